#!/bin/bash
# The GPU sprint on this workplace's lent GPU machine (docs/training.md, "On a lent GPU"), in three steps:
#
#   RUNS="denoising-s2 super-resolution-x2" bash scripts/lent_gpu.sh prepare
#                                        # here: wheels the machine lacks, the training data, a tree under 64 MiB
#   device run, carry [".gpu", ".whl"]:  # there (one call; MINUTES, RUNS, SHARES, EXTRA change the sprint)
#       MINUTES=7.5 RUNS="denoising-s2 super-resolution-x2" SHARES="2 1" bash scripts/lent_gpu.sh run
#   bash scripts/lent_gpu.sh restore     # here, right after: the index and .git/info/exclude as they were
#
# Only the checkout travels (not ../shared) and at most 64 MiB of it, so `prepare` copies CBSD432 and the first
# four CBSD68 images (the validation's) into .gpu/, and takes the ONNX graphs, the model folders the runs do not
# start from (`gpu_sprint.py --list_weights`), figures and examples out of the index for the call. The machine has PyTorch, transformers and
# accelerate, but not `datasets` or `pypng`: they travel as wheels. `run` packs each candidate folder (no ONNX
# graph: export it here when shipping) and the logs into $OUT, one file each, as the device tool brings back.
set -u
shopt -s nullglob
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/datasets}
RUNS=${RUNS:-denoising-s2 super-resolution-x2 super-resolution-x3}

case ${1:-} in
prepare)
    grep -qx "/.gpu/" .git/info/exclude || printf '/.gpu/\n/.whl/\n' >>.git/info/exclude
    mkdir -p .gpu/CBSD68 .whl && cp .git/info/exclude .gpu/exclude.bak
    cp -r "$SHARED/CBSD432" .gpu/
    ls "$SHARED/CBSD68" | sort | head -4 | while read -r name; do cp "$SHARED/CBSD68/$name" .gpu/CBSD68/; done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pypng==0.20220715.0 || exit 1
    # What the sprint does not read, out of the tree that travels.
    # shellcheck disable=SC2086
    needed=$(.venv/bin/python scripts/gpu_sprint.py --list_weights --runs $RUNS) || exit 1
    leave_behind=$(ls -d checkpoints/*/onnx docs/*.png docs/screenshots examples)
    for folder in checkpoints/mirnet-* checkpoints/runs/*; do
        [ -e "$folder" ] || continue # checkpoints/runs/ holds nothing while every run's weights are shipped
        grep -qx "$folder" <<<"$needed" || leave_behind+=$'\n'$folder
    done
    # shellcheck disable=SC2086
    git rm -r -q --cached $leave_behind
    for path in $leave_behind; do echo "/$path" >>.git/info/exclude; done
    size=$( (git ls-files; git ls-files --others --exclude-standard; find .gpu .whl -type f) | sort -u |
        xargs -d '\n' du -cb 2>/dev/null | tail -1 | cut -f1)
    echo "travels: $((size / 1048576)) MiB of 64"
    ;;
run)
    export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 3
    export PYTHONPATH=/tmp/site
    # DataLoader workers pass batches through /dev/shm.
    mount -o remount,size=32G /dev/shm 2>/dev/null
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    python3 -c "import torch, transformers, accelerate, datasets as d; print(torch.__version__, transformers.__version__,
        accelerate.__version__, d.__version__, torch.cuda.is_available())" || exit 4
    # shellcheck disable=SC2086
    timeout "${LIMIT:-$(python3 -c "print(int(${MINUTES:-7.5} * 60 + 45))")}" \
        python3 scripts/gpu_sprint.py --output_dir /tmp/sprint --minutes "${MINUTES:-7.5}" --no_onnx \
        --runs $RUNS ${SHARES:+--shares $SHARES} \
        --set dataset_name=.gpu/CBSD432 validation_dataset_name=.gpu/CBSD68 ${EXTRA:-}
    echo "sprint exit $?"
    cp /tmp/sprint/sprint.log "$OUT/"
    for run in /tmp/sprint/*/; do
        name=$(basename "$run")
        case $name in probe | train-*) continue ;; esac
        tar -C /tmp/sprint -cf "$OUT/$name.tar" "$name" && echo "packed $name"
    done
    tar -C /tmp/sprint -czf "$OUT/logs.tgz" --exclude='*.safetensors' --exclude='checkpoint-*' .
    ;;
restore)
    git reset -q
    cp .gpu/exclude.bak .git/info/exclude
    git status --short
    ;;
*)
    echo "usage: bash scripts/lent_gpu.sh prepare|run|restore (see the top of this file)" >&2
    exit 2
    ;;
esac
