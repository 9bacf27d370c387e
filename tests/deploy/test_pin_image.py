"""devtools/pin_image.py (`make pin-image`): the base image's digest, asked from a stand-in `docker` here
(no Docker on this machine), written into a copy of the Dockerfile; what the FROM lines then name."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from deploy_support import DOCKERFILE, base_image_problems, build_arg, instructions, interpolate_string

from devtools import pin_image

INDEX_DIGEST = "sha256:" + "4f" * 32


def fake_docker(tmp_path: Path, stdout: str, returncode: int = 0) -> Path:
    """A `docker` that records its arguments and prints `stdout`."""
    script = tmp_path / "docker"
    calls = tmp_path / "calls.json"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(calls)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.exit({returncode})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def from_images(text: str, env: dict[str, str]) -> list[str]:
    """The image each apache/airflow FROM line names, as the build substitutes its args."""
    return [
        interpolate_string(args.split()[0], env)
        for word, args in instructions(text)
        if word == "FROM" and args.startswith("apache/airflow:")
    ]


def test_pin_image_writes_the_index_digest_the_registry_reports(tmp_path):
    manifest = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": INDEX_DIGEST, "size": 1}
    docker = fake_docker(tmp_path, json.dumps(manifest))
    dockerfile = tmp_path / "Dockerfile"
    shutil.copy(DOCKERFILE, dockerfile)
    assert pin_image.main(["--docker", str(docker), "--dockerfile", str(dockerfile)]) == 0
    version = build_arg("AIRFLOW_VERSION")
    reference = f"apache/airflow:{version}-python3.11"
    asked = json.loads((tmp_path / "calls.json").read_text())
    assert asked == ["buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"]
    text = dockerfile.read_text()
    assert build_arg("AIRFLOW_IMAGE_DIGEST", text) == INDEX_DIGEST
    assert base_image_problems(text) == []
    env = {"AIRFLOW_VERSION": version, "AIRFLOW_IMAGE_DIGEST": INDEX_DIGEST}
    assert from_images(text, env) == [f"{reference}@{INDEX_DIGEST}"] * 2
    assert text.replace(INDEX_DIGEST, "") == DOCKERFILE.read_text().replace(
        f"ARG AIRFLOW_IMAGE_DIGEST={build_arg('AIRFLOW_IMAGE_DIGEST')}", "ARG AIRFLOW_IMAGE_DIGEST="
    )


def test_without_a_digest_the_from_lines_name_the_tag():
    version = build_arg("AIRFLOW_VERSION")
    images = from_images(DOCKERFILE.read_text(), {"AIRFLOW_VERSION": version, "AIRFLOW_IMAGE_DIGEST": ""})
    assert images == [f"apache/airflow:{version}-python3.11"] * 2


@pytest.mark.parametrize(
    ("stdout", "returncode", "message"),
    [
        (json.dumps({"digest": "sha256:abc"}), 0, "not a digest sha256:<64 hex digits>"),
        ("no json", 0, "printed no manifest digest"),
        ("", 1, "failed"),
    ],
)
def test_pin_image_refuses_what_is_not_a_digest(tmp_path, capsys, stdout, returncode, message):
    docker = fake_docker(tmp_path, stdout, returncode)
    dockerfile = tmp_path / "Dockerfile"
    shutil.copy(DOCKERFILE, dockerfile)
    assert pin_image.main(["--docker", str(docker), "--dockerfile", str(dockerfile)]) == 1
    assert message in capsys.readouterr().err
    assert dockerfile.read_text() == DOCKERFILE.read_text()


def test_pin_image_without_docker_says_where_to_run_it(tmp_path, capsys):
    dockerfile = tmp_path / "Dockerfile"
    shutil.copy(DOCKERFILE, dockerfile)
    missing = str(tmp_path / "no-docker")
    assert pin_image.main(["--docker", missing, "--dockerfile", str(dockerfile)]) == 1
    assert "is not installed: run `make pin-image` where Docker" in capsys.readouterr().err


def test_pin_image_takes_a_digest_resolved_elsewhere(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    shutil.copy(DOCKERFILE, dockerfile)
    assert pin_image.main(["--digest", INDEX_DIGEST, "--dockerfile", str(dockerfile)]) == 0
    assert build_arg("AIRFLOW_IMAGE_DIGEST", dockerfile.read_text()) == INDEX_DIGEST
    assert pin_image.main(["--digest", "latest", "--dockerfile", str(dockerfile)]) == 1
    assert build_arg("AIRFLOW_IMAGE_DIGEST", dockerfile.read_text()) == INDEX_DIGEST
