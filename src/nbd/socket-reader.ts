/**
 * How bytes get from an accepted socket into the parser.
 *
 * Node reads an accepted socket in chunks of at most 64 KiB, each a freshly
 * allocated Buffer; a 1 MiB NBD_CMD_WRITE then costs ~18 read(2) calls and as
 * many allocations (perf-baseline.md, "1 MiB writes"). Sockets constructed
 * with the `onread` option instead read into buffers we supply, and the
 * buffer generator lets us choose the next read's destination. We use that
 * to read a large WRITE payload straight into its (pooled) payload buffer,
 * and everything else into one staging buffer shared by all connections.
 * Sharing is safe because a read and its callback run back to back on the
 * event loop thread and the parser copies whatever it keeps before
 * returning.
 *
 * net.Server does not pass `onread` to the sockets it accepts, so
 * `adoptAcceptedSocket` moves the accepted socket's handle (still paused:
 * the server uses pauseOnConnect) into a new net.Socket built with it. That
 * touches `socket._handle`, which is not a documented API; when it is absent
 * we fall back to ordinary 'data' events.
 */
import net from "node:net";

export interface ByteSink {
  /** Bytes arrived; `chunk` is only valid during the call. */
  onBytes(chunk: Buffer): void;
  /** Where the next read may land directly (a payload window), or null. */
  directTarget(): Buffer | null;
  /** `byteCount` bytes were read into the start of the last directTarget(). */
  onDirectBytes(byteCount: number): void;
}

const STAGING_BYTES = 256 * 1024;
/** Payload remainders below this go through staging, which also picks up the next headers in the same read. */
const DIRECT_MIN_BYTES = 64 * 1024;

let staging: Buffer | null = null;

function sharedStaging(): Buffer {
  staging ??= Buffer.allocUnsafeSlow(STAGING_BYTES);
  return staging;
}

interface HandleCarrier {
  _handle?: unknown;
}

/**
 * Wrap an accepted, paused socket so that its reads go to `sink`. Returns the
 * socket to use from now on (a new one in the fast path; the same one in the
 * fallback) and starts reading.
 */
export function adoptAcceptedSocket(accepted: net.Socket, sink: ByteSink, opts: { userBuffers: boolean }): net.Socket {
  const carrier = accepted as unknown as HandleCarrier;
  if (opts.userBuffers && carrier._handle !== undefined && carrier._handle !== null) {
    const handle = carrier._handle;
    let lastWasDirect = false;
    let socket: net.Socket;
    try {
      socket = new net.Socket({
        handle,
        readable: true,
        writable: true,
        onread: {
          buffer: (): Buffer => {
            const target = sink.directTarget();
            if (target !== null && target.length >= DIRECT_MIN_BYTES) {
              lastWasDirect = true;
              return target;
            }
            lastWasDirect = false;
            return sharedStaging();
          },
          callback: (byteCount: number, buf: Uint8Array): void => {
            if (lastWasDirect) sink.onDirectBytes(byteCount);
            else sink.onBytes(Buffer.from(buf.buffer, buf.byteOffset, byteCount));
          },
        },
      } as net.SocketConstructorOpts);
    } catch {
      return readWithDataEvents(accepted, sink);
    }
    // The old wrapper must forget the handle before it is destroyed, or it
    // would close the connection; destroying it keeps net.Server's
    // connection count right.
    carrier._handle = null;
    accepted.destroy();
    socket.resume();
    return socket;
  }
  return readWithDataEvents(accepted, sink);
}

function readWithDataEvents(socket: net.Socket, sink: ByteSink): net.Socket {
  socket.on("data", (chunk: Buffer) => sink.onBytes(chunk));
  socket.resume();
  return socket;
}
