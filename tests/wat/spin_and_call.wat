;; A `wasi:cli/run` command that computes for a while (about a million loop
;; iterations), asks the host for the time, and does it again, forever: no
;; stretch of it comes near the CPU deadline, so only a CPU budget ends it.
(component
  (import "wasi:clocks/monotonic-clock@0.2.12" (instance $clock
    (export "now" (func (result u64)))))
  (core func $now (canon lower (func $clock "now")))
  (core module $m
    (import "host" "now" (func $now (result i64)))
    (func (export "run") (result i32)
      (local $i i32)
      (loop $forever
        (local.set $i (i32.const 1000000))
        (loop $spin
          (local.set $i (i32.sub (local.get $i) (i32.const 1)))
          (br_if $spin (local.get $i)))
        (drop (call $now))
        (br $forever))
      (i32.const 0)))
  (core instance $host (export "now" (func $now)))
  (core instance $m (instantiate $m (with "host" (instance $host))))
  (func $run (result (result)) (canon lift (core func $m "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.12" (instance $run-instance)))
