;; The DATA encoding of one window (window-simd.ts), built where the scan runs: 16 bytes
;; at a time, the output written into this module's own memory in the same pass.
;;
;; encode(len, stuff) reads the window at IN (len <= 65536 bytes) and the byte before it at
;; IN - 1 (the last byte of the previous window; LF at the start of the data, which starts a
;; line). It returns -1 when the window needs no change (the caller sends it as it is),
;; else the length of the encoded window it wrote at OUT.
;;
;; Every byte b is judged with the byte a before it, 16 pairs (a, b) per step:
;; - a is CR and b is not LF: a bare CR, so LF goes before b (and b starts a line);
;; - b is LF and a is not CR: a bare LF, so CR goes before b;
;; - b is a dot that starts a line (a is LF, or a bare CR) and `stuff` is set: a dot goes
;;   before b. After a bare CR that is LF then the dot.
;; One XOR of the CR and LF compare masks finds both bare cases. A CR in the last byte is
;; left as is: its pair is judged with the next window's first byte, or by finish().
;;
;; Output: each step stores its 16 bytes b as they are; for each pair that needs an insert,
;; the inserted byte(s) are stored at that pair's place and the bytes from b on are stored
;; again after them (the stores overlap; the later one wins). A step costs a few vector
;; instructions, an insert one more load and store, and nothing is called per line.
(module
  ;; [0, 16): byte 15 is the byte before the window. IN = 16: the window, 65536 bytes, then
  ;; room for the loads past its end (pairs there are masked off). OUT = 65664: the encoded
  ;; window, less than 2 bytes per input byte (a pair that takes two inserts, a dot after a
  ;; bare CR, cannot follow another), then room for the last overlapping stores.
  (memory (export "memory") 4)
  (global (export "input") i32 (i32.const 16))
  (global (export "output") i32 (i32.const 65664))

  (func (export "encode") (param $len i32) (param $stuff i32) (result i32)
    (local $p i32) (local $end i32) (local $o i32) (local $i i32)
    (local $a v128) (local $b v128) (local $crA v128) (local $bare v128) (local $dotB v128) (local $events v128)
    (local $stuffMask v128) (local $bits i32) (local $crBits i32) (local $dotBits i32)
    (local $k i32) (local $shift i32) (local $isCR i32)
    (local.set $stuffMask (i8x16.splat (i32.sub (i32.const 0) (local.get $stuff))))
    (local.set $p (i32.const 16))
    (local.set $end (i32.add (i32.const 16) (local.get $len)))

    ;; 1. Find the first step that needs an insert, storing nothing: a window that needs no
    ;; change (the usual case: CRLF text) is never copied out. 64 bytes a test; the test is
    ;; written out four times, because a called function is not inlined and the scan then
    ;; takes 1.7x as long (measured).
    (block $dirty
      (block $short
        (loop $blocks
          (br_if $short (i32.gt_u (i32.add (local.get $p) (i32.const 64)) (local.get $end)))
          (br_if $dirty (v128.any_true
              (v128.or
                (v128.or
                  (v128.or
                    (v128.xor (i8x16.eq (v128.load align=1 (i32.sub (local.get $p) (i32.const 1))) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (v128.load offset=0 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                    (v128.and (local.get $stuffMask) (v128.and (i8x16.eq (v128.load align=1 (i32.sub (local.get $p) (i32.const 1))) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (v128.load offset=0 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))
                  (v128.or
                    (v128.xor (i8x16.eq (v128.load offset=15 align=1 (local.get $p)) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (v128.load offset=16 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                    (v128.and (local.get $stuffMask) (v128.and (i8x16.eq (v128.load offset=15 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (v128.load offset=16 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))))
                (v128.or
                  (v128.or
                    (v128.xor (i8x16.eq (v128.load offset=31 align=1 (local.get $p)) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (v128.load offset=32 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                    (v128.and (local.get $stuffMask) (v128.and (i8x16.eq (v128.load offset=31 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (v128.load offset=32 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))
                  (v128.or
                    (v128.xor (i8x16.eq (v128.load offset=47 align=1 (local.get $p)) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (v128.load offset=48 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                    (v128.and (local.get $stuffMask) (v128.and (i8x16.eq (v128.load offset=47 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (v128.load offset=48 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))))))
          (local.set $p (i32.add (local.get $p) (i32.const 64)))
          (br $blocks)))
      ;; Fewer than 64 bytes left: 16 at a time, the pairs past the end masked off.
      (loop $steps
        (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i32.const -1))))
        (br_if $dirty (i32.and
          (i8x16.bitmask
            (v128.or
              (v128.xor (i8x16.eq (v128.load align=1 (i32.sub (local.get $p) (i32.const 1))) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (v128.load offset=0 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (local.get $stuffMask) (v128.and (i8x16.eq (v128.load align=1 (i32.sub (local.get $p) (i32.const 1))) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (v128.load offset=0 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))))
          (select (i32.const 0xffff)
            (i32.sub (i32.shl (i32.const 1) (i32.sub (local.get $end) (local.get $p))) (i32.const 1))
            (i32.ge_u (i32.sub (local.get $end) (local.get $p)) (i32.const 16)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $steps)))

    ;; 2. The bytes before that step need nothing: copy them out as they are.
    (local.set $i (i32.const 0))
    (block $copied
      (loop $copy
        (br_if $copied (i32.ge_u (i32.add (i32.const 16) (local.get $i)) (local.get $p)))
        (v128.store offset=65664 align=1 (local.get $i) (v128.load offset=16 align=1 (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $copy)))
    (local.set $o (i32.add (i32.const 65648) (local.get $p)))

    ;; 3. From there on, every step stores its bytes and inserts what its pairs need.
    (block $done
      (loop $encode
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a (v128.load align=1 (i32.sub (local.get $p) (i32.const 1))))
        (local.set $b (v128.load align=1 (local.get $p)))
        (v128.store align=1 (local.get $o) (local.get $b))
        (local.set $crA (i8x16.eq (local.get $a) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)))
        (local.set $bare (v128.xor (local.get $crA) (i8x16.eq (local.get $b) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))))
        (local.set $dotB (v128.and (local.get $stuffMask) (i8x16.eq (local.get $b) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))
        (local.set $events (v128.or (local.get $bare)
          (v128.and (local.get $dotB) (i8x16.eq (local.get $a) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))))
        (if (v128.any_true (local.get $events))
          (then
            (local.set $bits (i8x16.bitmask (local.get $events)))
            (if (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 16))
              (then (local.set $bits (i32.and (local.get $bits)
                (i32.sub (i32.shl (i32.const 1) (i32.sub (local.get $end) (local.get $p))) (i32.const 1))))))
            (local.set $crBits (i8x16.bitmask (local.get $crA)))
            (local.set $dotBits (i8x16.bitmask (local.get $dotB)))
            (local.set $shift (i32.const 0))
            (block $inserted
              (loop $each
                (br_if $inserted (i32.eqz (local.get $bits)))
                (local.set $k (i32.ctz (local.get $bits)))
                (local.set $isCR (i32.and (i32.shr_u (local.get $crBits) (local.get $k)) (i32.const 1)))
                ;; After a bare CR: LF, and a dot if b is one. Else b is LF (CR goes before
                ;; it) or a dot at a line start (a dot goes before it). Two bytes are always
                ;; stored; the second counts only after a bare CR before a dot.
                (i32.store16 align=1 (i32.add (local.get $o) (i32.add (local.get $k) (local.get $shift)))
                  (select
                    (i32.const 0x2e0a)
                    (select (i32.const 46) (i32.const 13) (i32.and (i32.shr_u (local.get $dotBits) (local.get $k)) (i32.const 1)))
                    (local.get $isCR)))
                (local.set $shift (i32.add (local.get $shift)
                  (i32.add (i32.const 1) (i32.and (local.get $isCR) (i32.shr_u (local.get $dotBits) (local.get $k))))))
                (v128.store align=1 (i32.add (local.get $o) (i32.add (local.get $k) (local.get $shift)))
                  (v128.load align=1 (i32.add (local.get $p) (local.get $k))))
                (local.set $bits (i32.and (local.get $bits) (i32.sub (local.get $bits) (i32.const 1))))
                (br $each)))
            (local.set $o (i32.add (local.get $o) (local.get $shift)))))
        (local.set $o (i32.add (local.get $o)
          (select (i32.const 16) (i32.sub (local.get $end) (local.get $p)) (i32.ge_u (i32.sub (local.get $end) (local.get $p)) (i32.const 16)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $encode)))
    (i32.sub (local.get $o) (i32.const 65664))))
