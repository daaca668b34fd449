#!/usr/bin/env bash
# The transfer experiment of docs/transfer-learning.md: a network of the zoo pretrained (TRAIN, from scratch) on
# Fashion-MNIST classes 0-4, fine-tuned on classes 5-9 in each mode and with a frozen prefix, then the same
# fine-tuning at 224x224 for time and memory (skipped with R224=0). Needs Debian's dataset-fashion-mnist and the
# built bench jar.
# BF16=1 adds the TUNE and EVAL fine-tunings (and TUNE at 224x224) with bfloat16 feature maps (--precision
# BF16_EMULATED: float32 kernels under bfloat16 maps on a CPU without bfloat16 kernels), beside the float32 ones.
# Usage: docs/transfer/experiment.sh WORKDIR [MODEL [FROZEN]]
#   MODEL: a zoo name (default resnet18); FROZEN: the frozen parts of the frozen-prefix runs (default 3: a ResNet's
#   stem, layer1 and layer2). Data in WORKDIR, results in WORKDIR (resnet18) or WORKDIR/MODEL: *.json, *.png, *.log
set -euo pipefail
work=${1:?work directory}
model=${2:-resnet18}
frozen=${3:-3}
out=$work
[ "$model" = resnet18 ] || out=$work/$model
root=$(cd "$(dirname "$0")/../.." && pwd)
cp="$root/convbn-bench/target/convbn-bench.jar:$(ls "$root"/convbn-bench/target/lib/*.jar | tr '\n' ':')"
export MALLOC_MMAP_THRESHOLD_=65536
bench() { java -Xms1g -Xmx1g -XX:+AlwaysPreTouch -cp "$cp" org.convbn.bench.BenchMain "$@"; }
mkdir -p "$work" "$out"
# every freezable part: only the classifier trains (a linear probe)
case $model in
    mobilenet_v2) all=19 ;; mobilenet_v3_large) all=17 ;; efficientnet_b*) all=9 ;; *) all=5 ;;
esac
[ -d "$work/source" ] || bench class-folders --classes 0,1,2,3,4 --per-class 2000 --out "$work/source"
# The target task has little data (200 images per class): where a pretrained network pays.
[ -d "$work/target" ] || bench class-folders --classes 5,6,7,8,9 --per-class 200 --out "$work/target"

common=(--model "$model" --batch 32 --resolution 32 --optimizer nesterov --weight-decay 1e-4 --quiet)
[ -f "$out/pretrained.safetensors" ] || bench finetune "${common[@]}" --data "$work/source" --mode train \
    --epochs 6 --lr 0.02 --schedule linear --out "$out/pretrained.safetensors" \
    --curve "$out/pretrain.json" --chart "$out/pretrain.png" | tee "$out/pretrain.log"

run() { # name, then finetune options
    local name=$1; shift
    # a run that diverges (DEPLOY can: its per-channel learning rates scale by 1/s^2) says so and the others go on
    bench finetune "${common[@]}" --data "$work/target" --epochs 5 --lr 0.01 "$@" \
        --out "$out/$name.safetensors" --curve "$out/$name.json" --chart "$out/$name.png" | tee "$out/$name.log" \
        || echo "$name: stopped early, see $out/$name.log"
}
run scratch-train --mode train
for mode in train eval tune deploy; do
    run "$mode" --weights "$out/pretrained.safetensors" --mode "$mode"
done
run "tune-frozen$frozen" --weights "$out/pretrained.safetensors" --mode tune --frozen-parts "$frozen"
run "deploy-frozen$frozen" --weights "$out/pretrained.safetensors" --mode deploy --frozen-parts "$frozen"
# Linear probes (only the head trains): what the pretrained features are worth against random ones.
run probe-pretrained --weights "$out/pretrained.safetensors" --mode tune --frozen-parts "$all"
run probe-scratch --mode tune --frozen-parts "$all"
if [ "${BF16:-0}" = 1 ]; then
    for mode in eval tune; do
        run "$mode-bf16" --weights "$out/pretrained.safetensors" --mode "$mode" --precision BF16_EMULATED
    done
    run "tune-frozen$frozen-bf16" --weights "$out/pretrained.safetensors" --mode tune --frozen-parts "$frozen" \
        --precision BF16_EMULATED
fi
[ "${R224:-1}" = 0 ] && exit 0

# Time and memory at torchvision's resolution: one epoch of 320 images per variant.
mkdir -p "$work/target224"
[ -d "$work/target224/5-Sandal" ] || bench class-folders --classes 5,6,7,8,9 --per-class 80 --out "$work/target224"
variants=("train 0 FULL" "eval 0 FULL" "tune 0 FULL" "deploy 0 FULL" "tune $frozen FULL" "tune $all FULL")
[ "${BF16:-0}" = 1 ] && variants+=("eval 0 BF16_EMULATED" "tune 0 BF16_EMULATED")
for v in "${variants[@]}"; do
    set -- $v
    name=r224-$1-$2
    [ "$3" = FULL ] || name=$name-bf16
    bench finetune --model "$model" --batch 32 --resolution 224 --quiet --validation 0 --data "$work/target224" \
        --weights "$out/pretrained.safetensors" --mode "$1" --frozen-parts "$2" --precision "$3" --epochs 1 \
        --lr 0.01 --out "$out/$name.safetensors" --curve "$out/$name.json" --chart "$out/$name.png" \
        | tee "$out/$name.log"
done
