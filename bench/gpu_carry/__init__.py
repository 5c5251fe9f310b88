"""A carry kit: vLLM and sciserve's serving set for a GPU machine without a package index.

Such a machine (CUDA, torch and about 150 common packages, but no vLLM, no index, at
most 64 MiB of files per command, `/tmp` kept only while it stays in use) cannot
install anything from an index. The kit is prepared where an index is reachable and
sent over in parts, one per command, back to back:

    python -m bench.gpu_carry prepare --out .gpu/               # here: download, cut
    python3 -m bench.gpu_carry receive .gpu/part-01 --into /tmp/carry    # there, per part
    python3 -m bench.gpu_carry install /tmp/carry --target /tmp/carry/site
    python3 -m bench.gpu_carry random-model /tmp/carry/model --out /tmp/demo-random

Modules: `resolve` (which wheels), `parts` (cut, receive, assemble, verify), `install`
(pip offline and the import check), `random_model` (weights from the carried config).
The receiving side needs only the standard library, pip, typer and packaging, all
present in the image.
"""
