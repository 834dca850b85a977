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
;; Speed: until the first insert nothing is stored, 64 bytes a test, so a window that needs
;; no change (CRLF text, base64) is never copied out. From there, a step with no insert is
;; stored as it is, and a step with inserts is expanded by a table-driven shuffle: the same
;; few instructions whatever its inserts, with no branch per insert (text with bare LF has
;; one in every third step or so). Nothing is called per line.
(module
  ;; [0, 16): byte 15 is the byte before the window. IN = 16: the window, 65536 bytes, then
  ;; 17 bytes past its end set so that no pair there needs an insert. OUT = 65664: the
  ;; encoded window, less than 2 bytes per input byte (a pair that takes two inserts, a dot
  ;; after a bare CR, cannot follow another), then room for the last step's stores.
  ;; TABLE = 196864: the expansion's shuffles, 256 x 16 bytes (see $fillTable).
  (memory (export "memory") 4)
  (global (export "input") i32 (i32.const 16))
  (global (export "output") i32 (i32.const 65664))

  (func (export "encode") (param $len i32) (param $stuff i32) (result i32)
    (local $p i32) (local $end i32) (local $o i32) (local $i i32)
    (local $a v128) (local $b v128) (local $crA v128) (local $bare v128) (local $dotB v128) (local $inserts v128)
    (local $stuffMask v128) (local $bits i32) (local $crBits i32) (local $dotBits i32)
    (local $k i32) (local $shift i32) (local $isCR i32)
    (local.set $stuffMask (i8x16.splat (i32.sub (i32.const 0) (local.get $stuff))))
    (local.set $p (i32.const 16))
    (local.set $end (i32.add (i32.const 16) (local.get $len)))
    ;; Past the end: bytes that make no pair need an insert (LF after a last CR, then zeros),
    ;; so the last, short step needs no mask.
    (v128.store offset=1 align=1 (local.get $end) (v128.const i64x2 0 0))
    (i32.store8 (local.get $end) (select (i32.const 10) (i32.const 0) (i32.eq (i32.load8_u offset=0 (i32.sub (local.get $end) (i32.const 1))) (i32.const 13))))

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
      ;; Fewer than 64 bytes left: 16 at a time (the bytes past the end need nothing).
      (loop $steps
        (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i32.const -1))))
        (br_if $dirty (v128.any_true
            (v128.or
              (v128.xor (i8x16.eq (v128.load align=1 (i32.sub (local.get $p) (i32.const 1))) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (v128.load offset=0 align=1 (local.get $p)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (local.get $stuffMask) (v128.and (i8x16.eq (v128.load align=1 (i32.sub (local.get $p) (i32.const 1))) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (v128.load offset=0 align=1 (local.get $p)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))))
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

    ;; 3. From there on, every step of 16 bytes goes out with what its pairs insert.
    (block $done
      (loop $encode
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a (v128.load align=1 (i32.sub (local.get $p) (i32.const 1))))
        (local.set $b (v128.load align=1 (local.get $p)))
        (local.set $crA (i8x16.eq (local.get $a) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)))
        (local.set $bare (v128.xor (local.get $crA) (i8x16.eq (local.get $b) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))))
        (local.set $dotB (v128.and (local.get $stuffMask) (i8x16.eq (local.get $b) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))
        (local.set $bits
          (i8x16.bitmask (v128.or (local.get $bare)
            (v128.and (local.get $dotB) (i8x16.eq (local.get $a) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))))))
        (if (i32.eqz (local.get $bits))
          (then
            ;; Nothing to insert (the usual step): the bytes as they are.
            (v128.store align=1 (local.get $o) (local.get $b))
            (local.set $o (i32.add (local.get $o) (i32.const 16))))
        (else (if (v128.any_true (v128.and (local.get $crA) (local.get $dotB)))
          (then
            ;; A dot after a bare CR takes two inserts (LF, dot): rare, one pair at a time. The
            ;; step's bytes are stored, then at each pair that needs an insert, the insert and
            ;; the bytes from b on are stored again after it (the later store wins).
            (v128.store align=1 (local.get $o) (local.get $b))
            (local.set $crBits (i8x16.bitmask (local.get $crA)))
            (local.set $dotBits (i8x16.bitmask (local.get $dotB)))
            (block $inserted
              (loop $each
                (br_if $inserted (i32.eqz (local.get $bits)))
                (local.set $k (i32.ctz (local.get $bits)))
                (local.set $isCR (i32.and (i32.shr_u (local.get $crBits) (local.get $k)) (i32.const 1)))
                ;; After a bare CR: LF, and a dot if b is one. Else b is LF (CR goes before
                ;; it) or a dot at a line start (a dot goes before it). Two bytes are always
                ;; stored; the second counts only after a bare CR before a dot.
                (i32.store16 align=1 (i32.add (local.get $o) (local.get $k))
                  (select
                    (i32.const 0x2e0a)
                    (select (i32.const 46) (i32.const 13) (i32.and (i32.shr_u (local.get $dotBits) (local.get $k)) (i32.const 1)))
                    (local.get $isCR)))
                (local.set $shift (i32.add (i32.const 1) (i32.and (local.get $isCR) (i32.shr_u (local.get $dotBits) (local.get $k)))))
                (local.set $o (i32.add (local.get $o) (local.get $shift)))
                (v128.store align=1 (i32.add (local.get $o) (local.get $k))
                  (v128.load align=1 (i32.add (local.get $p) (local.get $k))))
                (local.set $bits (i32.and (local.get $bits) (i32.sub (local.get $bits) (i32.const 1))))
                (br $each)))
            (local.set $o (i32.add (local.get $o) (i32.const 16))))
          (else
            ;; The byte each pair inserts: LF after a bare CR, else a dot before a dot, else CR.
            ;; Each half of 8 bytes is shuffled with its 8 inserts by the table row of its mask.
            (local.set $inserts
              (v128.bitselect (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10) (v128.bitselect (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13) (local.get $dotB)) (local.get $crA)))
            (v128.store align=1 (local.get $o)
              (i8x16.swizzle
                (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $b) (local.get $inserts))
                (v128.load offset=196864 (i32.shl (i32.and (local.get $bits) (i32.const 0xff)) (i32.const 4)))))
            (local.set $o (i32.add (local.get $o) (i32.add (i32.const 8) (i32.popcnt (i32.and (local.get $bits) (i32.const 0xff))))))
            (v128.store align=1 (local.get $o)
              (i8x16.swizzle
                (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $b) (local.get $inserts))
                (v128.load offset=196864 (i32.shl (i32.shr_u (local.get $bits) (i32.const 8)) (i32.const 4)))))
            (local.set $o (i32.add (local.get $o) (i32.add (i32.const 8) (i32.popcnt (i32.shr_u (local.get $bits) (i32.const 8))))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $encode)))
    ;; The last step may have run past the end: its bytes there are not output.
    (i32.sub (i32.sub (local.get $o) (i32.const 65664)) (i32.sub (local.get $p) (local.get $end))))

  ;; The expansion table at TABLE: for each 8-bit mask of a half's inserts, 16 indexes into
  ;; (its 8 bytes, their 8 inserts) that put insert i (index 8 + i) before byte i (index i).
  (func $fillTable
    (local $mask i32) (local $i i32) (local $j i32) (local $row i32)
    (loop $masks
      (local.set $row (i32.add (i32.const 196864) (i32.shl (local.get $mask) (i32.const 4))))
      (local.set $i (i32.const 0))
      (local.set $j (i32.const 0))
      (loop $bytes
        (if (i32.and (i32.shr_u (local.get $mask) (local.get $i)) (i32.const 1))
          (then
            (i32.store8 (i32.add (local.get $row) (local.get $j)) (i32.add (i32.const 8) (local.get $i)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))))
        (i32.store8 (i32.add (local.get $row) (local.get $j)) (local.get $i))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $bytes (i32.lt_u (local.get $i) (i32.const 8))))
      (local.set $mask (i32.add (local.get $mask) (i32.const 1)))
      (br_if $masks (i32.lt_u (local.get $mask) (i32.const 256)))))
  (start $fillTable))
