;; A `wasi:cli/run` command that grows a funcref table by 2^20 elements
;; (8 MiB of host memory) at a time, up to its declared maximum of 40
;; million elements (320 MiB). Under a 64 MiB limit it must trap long
;; before; if a growth returns -1 instead, it traps too.
(component
  (core module $m
    (table $t 1 40000000 funcref)
    (func (export "run") (result i32)
      (loop $grow
        (if (i32.eq (table.grow $t (ref.null func) (i32.const 1048576)) (i32.const -1))
          (then unreachable))
        (br $grow))
      (i32.const 0)))
  (core instance $m (instantiate $m))
  (func $run (result (result)) (canon lift (core func $m "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.12" (instance $run-instance)))
