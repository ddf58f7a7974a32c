"""Generates the gRPC stubs from proto/ whenever a wheel or sdist is built, so the installed
package always ships stubs that match its .proto files (they are never committed)."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildWithStubs(build_py):  # type: ignore[misc]
    def run(self) -> None:
        from grpc_tools import protoc  # noqa: PLC0415 - a build-time requirement only

        protos = sorted(str(p) for p in (ROOT / "proto" / "lightningstor" / "v1").glob("*.proto"))
        args = [
            "protoc",
            f"-I{ROOT / 'proto'}",
            f"--python_out={ROOT}",
            f"--pyi_out={ROOT}",
            f"--grpc_python_out={ROOT}",
        ]
        if protoc.main([*args, *protos]) != 0:
            raise RuntimeError("generating the gRPC stubs failed")
        super().run()


setup(cmdclass={"build_py": BuildWithStubs})
