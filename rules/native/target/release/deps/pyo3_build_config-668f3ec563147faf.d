/work/wt/integ/rules/native/target/release/deps/pyo3_build_config-668f3ec563147faf.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/impl_.rs /work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out/pyo3-build-config-file.txt /work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out/pyo3-build-config.txt

/work/wt/integ/rules/native/target/release/deps/libpyo3_build_config-668f3ec563147faf.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/impl_.rs /work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out/pyo3-build-config-file.txt /work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out/pyo3-build-config.txt

/work/wt/integ/rules/native/target/release/deps/libpyo3_build_config-668f3ec563147faf.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/impl_.rs /work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out/pyo3-build-config-file.txt /work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out/pyo3-build-config.txt

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/errors.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-build-config-0.25.1/src/impl_.rs:
/work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out/pyo3-build-config-file.txt:
/work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out/pyo3-build-config.txt:

# env-dep:CARGO_PKG_VERSION=0.25.1
# env-dep:OUT_DIR=/work/wt/integ/rules/native/target/release/build/pyo3-build-config-6acdd0bc9abb147b/out
