/work/wt/integ/rules/native/target/release/deps/pyo3_macros-b5e7527263adad68.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-macros-0.25.1/src/lib.rs

/work/wt/integ/rules/native/target/release/deps/libpyo3_macros-b5e7527263adad68.so: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-macros-0.25.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pyo3-macros-0.25.1/src/lib.rs:

# env-dep:CARGO_PKG_VERSION=0.25.1
