#!/usr/bin/env bash
# The transfer experiment of docs/transfer-learning.md: a ResNet-18 pretrained (TRAIN, from scratch) on
# Fashion-MNIST classes 0-4, fine-tuned on classes 5-9 in each mode and with a frozen prefix, then the same
# fine-tuning at 224x224 for time and memory. Needs Debian's dataset-fashion-mnist and the built bench jar.
# Usage: docs/transfer/experiment.sh WORKDIR   (results: WORKDIR/*.json, *.png, *.log)
set -euo pipefail
work=${1:?work directory}
root=$(cd "$(dirname "$0")/../.." && pwd)
cp="$root/convbn-bench/target/convbn-bench.jar:$(ls "$root"/convbn-bench/target/lib/*.jar | tr '\n' ':')"
export MALLOC_MMAP_THRESHOLD_=65536
bench() { java -Xms1g -Xmx1g -XX:+AlwaysPreTouch -cp "$cp" org.convbn.bench.BenchMain "$@"; }
mkdir -p "$work"
[ -d "$work/source" ] || bench class-folders --classes 0,1,2,3,4 --per-class 2000 --out "$work/source"
# The target task has little data (200 images per class): where a pretrained network pays.
[ -d "$work/target" ] || bench class-folders --classes 5,6,7,8,9 --per-class 200 --out "$work/target"

common=(--model resnet18 --batch 32 --resolution 32 --optimizer nesterov --weight-decay 1e-4 --quiet)
[ -f "$work/pretrained.safetensors" ] || bench finetune "${common[@]}" --data "$work/source" --mode train \
    --epochs 6 --lr 0.02 --schedule linear --out "$work/pretrained.safetensors" \
    --curve "$work/pretrain.json" --chart "$work/pretrain.png" | tee "$work/pretrain.log"

run() { # name, then finetune options
    local name=$1; shift
    bench finetune "${common[@]}" --data "$work/target" --epochs 5 --lr 0.01 "$@" \
        --out "$work/$name.safetensors" --curve "$work/$name.json" --chart "$work/$name.png" | tee "$work/$name.log"
}
run scratch-train --mode train
for mode in train eval tune deploy; do
    run "$mode" --weights "$work/pretrained.safetensors" --mode "$mode"
done
run tune-frozen3 --weights "$work/pretrained.safetensors" --mode tune --frozen-parts 3
run deploy-frozen3 --weights "$work/pretrained.safetensors" --mode deploy --frozen-parts 3
# Linear probes (only the head trains): what the pretrained features are worth against random ones.
run probe-pretrained --weights "$work/pretrained.safetensors" --mode tune --frozen-parts 5
run probe-scratch --mode tune --frozen-parts 5

# Time and memory at torchvision's resolution: one epoch of 320 images per variant.
mkdir -p "$work/target224"
[ -d "$work/target224/5-Sandal" ] || bench class-folders --classes 5,6,7,8,9 --per-class 80 --out "$work/target224"
for v in "train 0" "eval 0" "tune 0" "deploy 0" "tune 3" "tune 5"; do
    set -- $v
    bench finetune --model resnet18 --batch 32 --resolution 224 --quiet --validation 0 --data "$work/target224" \
        --weights "$work/pretrained.safetensors" --mode "$1" --frozen-parts "$2" --epochs 1 --lr 0.01 \
        --out "$work/r224-$1-$2.safetensors" --curve "$work/r224-$1-$2.json" --chart "$work/r224-$1-$2.png" \
        | tee "$work/r224-$1-$2.log"
done
