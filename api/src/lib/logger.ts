export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** Structured JSON lines. Callers pass ids and counts, never secrets, headers or bodies. */
export function jsonLogger(
  write: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  minLevel: LogLevel = 'info',
): Logger {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  return (level, msg, fields) => {
    if (order.indexOf(level) < order.indexOf(minLevel)) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
  };
}
