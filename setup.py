"""Builds the compiled scanning core `rules._native` (rules/native, Rust + PyO3) with the package.

Everything else lives in pyproject.toml. The extension is optional: without a Rust toolchain
`pip install .` still succeeds and rules/detect/finder.py falls back to the pure-Python reference.
"""

from setuptools import setup  # type: ignore[import-untyped]  # no stubs in the build env
from setuptools_rust import Binding, RustExtension  # type: ignore[import-not-found]  # build-time only

setup(
    rust_extensions=[
        RustExtension(
            "rules._native",
            path="rules/native/Cargo.toml",
            binding=Binding.PyO3,
            optional=True,
            debug=False,  # release even for editable installs: the point is speed
            py_limited_api=False,  # built for this interpreter (rules/native/Cargo.toml: why)
        )
    ],
)
