/** The CLI's structured logs: one JSON object per line, with its time, on the given stream (stderr). */
export function serverLogger(stream: NodeJS.WritableStream): (event: Record<string, unknown>) => void {
  return (event) => {
    stream.write(JSON.stringify({ time: new Date().toISOString(), ...event }) + "\n");
  };
}
