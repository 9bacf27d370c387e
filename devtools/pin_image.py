"""Pin the Dockerfile's base image by digest: write the digest of apache/airflow:<AIRFLOW_VERSION>-python3.11
into its `ARG AIRFLOW_IMAGE_DIGEST=` line.

    python -m devtools.pin_image                       (make pin-image)
    python -m devtools.pin_image --digest sha256:...   (a digest resolved elsewhere, e.g. `crane digest`)

Resolving needs Docker with buildx and access to Docker Hub (`docker buildx imagetools inspect`). The digest
is the one of the image index (all platforms), so one pin serves amd64 and arm64 builds. Run it again after
changing AIRFLOW_VERSION, and commit the Dockerfile.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
VERSION_ARG = re.compile(r"^ARG AIRFLOW_VERSION=(\S+)$", re.M)
DIGEST_ARG = re.compile(r"^ARG AIRFLOW_IMAGE_DIGEST=.*$", re.M)
HOW = "run `make pin-image` where Docker with buildx can reach Docker Hub, or pass --digest"


class PinError(RuntimeError):
    pass


def image_reference(dockerfile_text: str) -> str:
    match = VERSION_ARG.search(dockerfile_text)
    if not match:
        raise PinError("the Dockerfile has no `ARG AIRFLOW_VERSION=<version>` line")
    return f"apache/airflow:{match.group(1)}-python3.11"


def checked(digest: str, source: str) -> str:
    if not DIGEST.fullmatch(digest):
        raise PinError(f"{source} gave {digest!r}, not a digest sha256:<64 hex digits>")
    return digest


def resolve(reference: str, docker: str = "docker") -> str:
    """The index digest of `reference` on its registry."""
    command = [docker, "buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise PinError(f"{docker} is not installed: {HOW}") from None
    if result.returncode != 0:
        raise PinError(f"`{' '.join(command)}` failed: {result.stderr.strip()[-500:]}; {HOW}")
    try:
        digest = json.loads(result.stdout)["digest"]
    except (ValueError, KeyError, TypeError):
        raise PinError(f"`{' '.join(command)}` printed no manifest digest: {result.stdout[:200]!r}") from None
    return checked(digest, f"docker for {reference}")


def pinned(dockerfile_text: str, digest: str) -> str:
    """The Dockerfile with AIRFLOW_IMAGE_DIGEST set to `digest` (its one ARG line rewritten)."""
    text, count = DIGEST_ARG.subn(
        f"ARG AIRFLOW_IMAGE_DIGEST={checked(digest, 'the digest')}", dockerfile_text
    )
    if count != 1:
        raise PinError(f"the Dockerfile has {count} `ARG AIRFLOW_IMAGE_DIGEST=` lines, expected one")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--digest", help="write this digest instead of resolving it with Docker")
    parser.add_argument("--docker", default="docker", help="the docker executable (default: docker)")
    parser.add_argument("--dockerfile", type=Path, default=DOCKERFILE)
    args = parser.parse_args(argv)
    try:
        text = args.dockerfile.read_text()
        reference = image_reference(text)
        digest = args.digest or resolve(reference, args.docker)
        args.dockerfile.write_text(pinned(text, digest))
    except PinError as error:
        print(f"pin-image: {error}", file=sys.stderr)
        return 1
    print(f"{args.dockerfile.name}: AIRFLOW_IMAGE_DIGEST={digest} ({reference})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
