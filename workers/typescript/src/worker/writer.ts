// Writes data-channel frames in order; batches only what queued up while the stream was full
// (AWP-BAT-004: no frame waits for a batch).
import { create } from "@bufbuild/protobuf";
import {
  OpenChannelRequestSchema,
  OpenChannelRequest_BatchSchema,
  type OpenChannelRequest,
} from "../gen/v1/agentworker_pb.js";

/** The part of a gRPC duplex stream the writer needs. */
export interface FrameSink {
  write(frame: OpenChannelRequest): boolean;
  once(event: "drain", listener: () => void): unknown;
}

export class FrameWriter {
  private readonly queue: OpenChannelRequest[] = [];
  private waiting = false;
  private closed = false;
  /** Frames per batch; 0 means batching is not in force (AWP-BAT-001). */
  maxBatch = 0;

  constructor(private readonly sink: FrameSink) {}

  /** Queues a frame; it is written at once unless the stream is full. */
  send(frame: OpenChannelRequest): void {
    if (this.closed) {
      return;
    }
    this.queue.push(frame);
    this.flush();
  }

  /** Drops what is still queued and writes nothing more. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  private flush(): void {
    while (!this.waiting && !this.closed && this.queue.length > 0) {
      const count = this.maxBatch > 1 ? Math.min(this.maxBatch, this.queue.length) : 1;
      const frames = this.queue.splice(0, count);
      const frame =
        frames.length === 1 && frames[0] !== undefined
          ? frames[0]
          : create(OpenChannelRequestSchema, {
              message: {
                case: "batch",
                value: create(OpenChannelRequest_BatchSchema, { messages: frames }),
              },
            });
      if (!this.sink.write(frame)) {
        this.waiting = true;
        this.sink.once("drain", () => {
          this.waiting = false;
          this.flush();
        });
      }
    }
  }
}
