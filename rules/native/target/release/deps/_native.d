/work/wt/integ/rules/native/target/release/deps/_native.d: src/lib.rs src/classes.rs src/email.rs src/linkedin.rs src/phone.rs src/text.rs src/view.rs src/tables.rs

/work/wt/integ/rules/native/target/release/deps/lib_native.so: src/lib.rs src/classes.rs src/email.rs src/linkedin.rs src/phone.rs src/text.rs src/view.rs src/tables.rs

src/lib.rs:
src/classes.rs:
src/email.rs:
src/linkedin.rs:
src/phone.rs:
src/text.rs:
src/view.rs:
src/tables.rs:
