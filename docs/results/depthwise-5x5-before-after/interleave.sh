#!/bin/bash
# interleaved old/new measurement, fresh JVM per run
out=steps.txt; : > $out
for r in 1 2 3; do
 for m in efficientnet_b0 mobilenet_v3_large; do
  for mode in EVAL DEPLOY TUNE; do
   for v in old new; do
     if [ $v = old ]; then J=OLD/convbn-bench/target/convbn-bench.jar; else J=NEW/convbn-bench/target/convbn-bench.jar; fi; java -jar $J measure --model $m --mode $mode --steps 6 --warmup 2 --result ab-$v.json > /dev/null 2>&1
     python3 -c "
import json;d=json.load(open('ab-$v.json'));print('$r $m $mode $v', round(d.get('step_ms_median', 0),1), round(d.get('peak_bytes',0)/2**20,1))" >> $out
   done
  done
 done
done
