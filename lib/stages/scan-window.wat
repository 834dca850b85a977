;; The fast path of the DATA encoding (data-encoder.ts, window-scan.ts), 16 bytes at a time.
;;
;; scan(len, from, lineStart, stuff) looks at the window copied to offset 0 and appends to
;; the insert list what the encoding must add: a CR before each bare LF, and (with stuff)
;; a dot before each dot that starts a line. It returns the offset of the first bare CR
;; (a CR not followed by LF; a CR in the last byte is not bare yet), where the caller takes
;; over with its careful scan, or -1. Inserts are appended in ascending order from `count`.
;;
;; Each step compares the bytes at p..p+15 with the bytes at p+1..p+16: a CR must be
;; followed by LF and an LF preceded by CR (one XOR of the two compare masks finds both
;; faults), and an LF followed by a dot needs stuffing. Text that needs no change, the
;; usual case, costs a few vector instructions per 16 bytes and no call per line.
(module
  ;; [0, 65536): the window being scanned (64 KiB at most). Then the insert list, room for
  ;; 2 * 65536 + 2 entries: their offsets (i32) at insertAt, their bytes (u8) at insertByte.
  (memory (export "memory") 12)
  (global (export "insertAt") i32 (i32.const 65536))
  (global (export "insertByte") i32 (i32.const 589832))
  ;; Entries in the insert list.
  (global $count (export "count") (mut i32) (i32.const 0))

  (func $insert (param $pos i32) (param $byte i32)
    (i32.store (i32.add (i32.const 65536) (i32.shl (global.get $count) (i32.const 2))) (local.get $pos))
    (i32.store8 (i32.add (i32.const 589832) (global.get $count)) (local.get $byte))
    (global.set $count (i32.add (global.get $count) (i32.const 1))))

  ;; scan(len, from, lineStart, stuff) -> offset of the first bare CR, or -1
  (func (export "scan") (param $len i32) (param $from i32) (param $lineStart i32) (param $stuff i32) (result i32)
    (local $p i32) (local $b i32) (local $v v128) (local $w v128) (local $cr v128) (local $lfw v128) (local $dotv v128)
    (local $stuffMask v128) (local $bad i32) (local $lfmask i32) (local $events i32) (local $bit i32)
    (local $checkedUntil i32)
    (if (i32.ge_u (local.get $from) (local.get $len)) (then (return (i32.const -1))))
    (local.set $b (i32.load8_u (local.get $from)))
    (if (i32.eq (local.get $b) (i32.const 10))
      (then
        (if (i32.eqz (local.get $from))
          (then (call $insert (local.get $from) (i32.const 13)))
          (else
            (if (i32.ne (i32.load8_u (i32.sub (local.get $from) (i32.const 1))) (i32.const 13))
              (then (call $insert (local.get $from) (i32.const 13))))))))
    (if (i32.and (local.get $lineStart) (i32.and (local.get $stuff) (i32.eq (local.get $b) (i32.const 46))))
      (then (call $insert (local.get $from) (i32.const 46))))
    ;; Pairs (p, p+1) from `from` on; the byte at `from` itself was judged above.
    (local.set $stuffMask (i8x16.splat (i32.sub (i32.const 0) (local.get $stuff))))
    (local.set $p (local.get $from))
    (block $simd_done
      (loop $simd
        ;; 64 bytes that need nothing (the usual case) are passed over in one test; a block
        ;; that needs something is then taken 16 bytes at a time without testing it again.
        ;; The test is written out four times: as a called function it is not inlined here
        ;; and the scan takes 1.7x as long (measured).
        (block $blocks_done
          (loop $blocks
            (br_if $blocks_done (i32.lt_u (local.get $p) (local.get $checkedUntil)))
            (br_if $blocks_done (i32.gt_u (i32.add (local.get $p) (i32.const 65)) (local.get $len)))
            (if (v128.any_true
                  (v128.or
                    (v128.or
                      (v128.or
              (v128.xor
                (i8x16.eq (v128.load offset=0 align=1 (local.get $p)) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13))
                (i8x16.eq (v128.load offset=1 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (local.get $stuffMask)
                (v128.and
                  (i8x16.eq (v128.load offset=0 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                  (i8x16.eq (v128.load offset=1 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))
                      (v128.or
              (v128.xor
                (i8x16.eq (v128.load offset=16 align=1 (local.get $p)) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13))
                (i8x16.eq (v128.load offset=17 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (local.get $stuffMask)
                (v128.and
                  (i8x16.eq (v128.load offset=16 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                  (i8x16.eq (v128.load offset=17 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))))
                    (v128.or
                      (v128.or
              (v128.xor
                (i8x16.eq (v128.load offset=32 align=1 (local.get $p)) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13))
                (i8x16.eq (v128.load offset=33 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (local.get $stuffMask)
                (v128.and
                  (i8x16.eq (v128.load offset=32 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                  (i8x16.eq (v128.load offset=33 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))
                      (v128.or
              (v128.xor
                (i8x16.eq (v128.load offset=48 align=1 (local.get $p)) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13))
                (i8x16.eq (v128.load offset=49 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (local.get $stuffMask)
                (v128.and
                  (i8x16.eq (v128.load offset=48 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                  (i8x16.eq (v128.load offset=49 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))))))
              (then
                (local.set $checkedUntil (i32.add (local.get $p) (i32.const 64)))
                (br $blocks_done)))
            (local.set $p (i32.add (local.get $p) (i32.const 64)))
            (br $blocks)))
        (br_if $simd_done (i32.gt_u (i32.add (local.get $p) (i32.const 17)) (local.get $len)))
        (local.set $v (v128.load align=1 (local.get $p)))
        (local.set $w (v128.load offset=1 align=1 (local.get $p)))
        (local.set $cr (i8x16.eq (local.get $v) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)))
        (local.set $lfw (i8x16.eq (local.get $w) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
        (local.set $dotv
          (v128.and (local.get $stuffMask)
            (v128.and (i8x16.eq (local.get $v) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                      (i8x16.eq (local.get $w) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))
        (if (v128.any_true (v128.or (v128.xor (local.get $cr) (local.get $lfw)) (local.get $dotv)))
          (then
            (local.set $bad (i8x16.bitmask (v128.xor (local.get $cr) (local.get $lfw))))
            (local.set $lfmask (i8x16.bitmask (local.get $lfw)))
            (local.set $events (i32.or (i32.and (local.get $bad) (local.get $lfmask)) (i8x16.bitmask (local.get $dotv))))
            (block $events_done
              (loop $each
                (br_if $events_done (i32.eqz (local.get $events)))
                (local.set $bit (i32.ctz (local.get $events)))
                (call $insert
                  (i32.add (i32.add (local.get $p) (local.get $bit)) (i32.const 1))
                  (select (i32.const 13) (i32.const 46) (i32.and (i32.shr_u (local.get $lfmask) (local.get $bit)) (i32.const 1))))
                (local.set $events (i32.and (local.get $events) (i32.sub (local.get $events) (i32.const 1))))
                (br $each)))
            (local.set $bad (i32.and (local.get $bad) (i32.xor (local.get $lfmask) (i32.const -1))))
            (if (local.get $bad) (then (return (i32.add (local.get $p) (i32.ctz (local.get $bad))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $simd)))
    ;; The last pairs, fewer than 16, one at a time.
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (i32.add (local.get $p) (i32.const 1)) (local.get $len)))
        (local.set $b (i32.load8_u (local.get $p)))
        (local.set $bit (i32.load8_u offset=1 (local.get $p)))
        (if (i32.and (i32.eq (local.get $b) (i32.const 13)) (i32.ne (local.get $bit) (i32.const 10)))
          (then (return (local.get $p))))
        (if (i32.and (i32.eq (local.get $bit) (i32.const 10)) (i32.ne (local.get $b) (i32.const 13)))
          (then (call $insert (i32.add (local.get $p) (i32.const 1)) (i32.const 13))))
        (if (i32.and (local.get $stuff) (i32.and (i32.eq (local.get $b) (i32.const 10)) (i32.eq (local.get $bit) (i32.const 46))))
          (then (call $insert (i32.add (local.get $p) (i32.const 1)) (i32.const 46))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $tail)))
    (i32.const -1)))
