;; A `wasi:cli/run` command whose trapping function's name (in the name
;; section) carries ESC, CR and LF: a terminal would recolour and rewrite the
;; host's line if the trap message printed it raw.
(component
  (core module $m
    (func $"evil\1b[31mFAKE\0d[1.2.3.4:5] wsbox: forged\0aline"
      unreachable)
    (func (export "run") (result i32)
      (call $"evil\1b[31mFAKE\0d[1.2.3.4:5] wsbox: forged\0aline")
      (i32.const 0)))
  (core instance $m (instantiate $m))
  (func $run (result (result)) (canon lift (core func $m "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.12" (instance $run-instance)))
