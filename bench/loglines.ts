// The dispatcher's JSON log lines as the bench reads them (pino: one object a line), without the
// contenders' imports, so the timelines and their unit tests can read logs too.

export interface LogLine {
  time: number;
  level: number;
  msg: string;
  action?: string;
  results?: string[];
}

export function parseLines(text: string): LogLine[] {
  return text
    .split("\n")
    // a killed process may leave half a line
    .filter((l) => l.startsWith("{") && l.endsWith("}"))
    .map((l) => JSON.parse(l) as LogLine);
}
