;; A `wasi:cli/run` command of six core instances, each with a linear
;; memory of its own, each growing it to 60 MiB and writing every byte:
;; 360 MiB in all. Under a 64 MiB limit for the whole instance it must trap
;; when the second memory grows.
(component
  (core module $hog
    (memory 1)
    (func (export "run")
      ;; 1 + 959 pages of 64 KiB: 60 MiB.
      (if (i32.eq (memory.grow (i32.const 959)) (i32.const -1))
        (then unreachable))
      (memory.fill (i32.const 0) (i32.const 0xa5) (i32.const 62914560))))
  (core instance $a (instantiate $hog))
  (core instance $b (instantiate $hog))
  (core instance $c (instantiate $hog))
  (core instance $d (instantiate $hog))
  (core instance $e (instantiate $hog))
  (core instance $f (instantiate $hog))
  (core module $main
    (import "a" "run" (func $a))
    (import "b" "run" (func $b))
    (import "c" "run" (func $c))
    (import "d" "run" (func $d))
    (import "e" "run" (func $e))
    (import "f" "run" (func $f))
    ;; 0: `ok` of `result`.
    (func (export "run") (result i32)
      (call $a) (call $b) (call $c) (call $d) (call $e) (call $f)
      (i32.const 0)))
  (core instance $main (instantiate $main
    (with "a" (instance $a)) (with "b" (instance $b)) (with "c" (instance $c))
    (with "d" (instance $d)) (with "e" (instance $e)) (with "f" (instance $f))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.12" (instance $run-instance)))
