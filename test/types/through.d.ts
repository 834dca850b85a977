/** Types for `through` (an old-style stream maker the tests use as a message source; it ships none). */
declare module "through" {
  import type { Stream } from "node:stream";
  interface ThroughStream extends Stream {
    readable: boolean;
    writable: boolean;
    paused: boolean;
    write(data: unknown): boolean;
    end(data?: unknown): ThroughStream;
    queue(data: unknown): ThroughStream;
    destroy(): ThroughStream;
    pause(): ThroughStream;
    resume(): ThroughStream;
  }
  function through(write?: (this: ThroughStream, data: unknown) => void, end?: (this: ThroughStream) => void, opts?: { autoDestroy?: boolean }): ThroughStream;
  export = through;
}
