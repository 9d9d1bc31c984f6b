// A minimal leveled logger writing to standard error.

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const LEVELS = ["debug", "info", "warn", "error"] as const;
type Level = (typeof LEVELS)[number];

/** Logs at `level` and above; the default comes from AGENTWORKER_LOG_LEVEL (else "warn"). */
export function createLogger(
  level: string = process.env["AGENTWORKER_LOG_LEVEL"] ?? "warn",
): Logger {
  const wanted = level.toLowerCase() === "warning" ? "warn" : level.toLowerCase();
  const min = Math.max(0, LEVELS.indexOf(wanted as Level));
  const at = (lvl: Level) => (message: string) => {
    if (LEVELS.indexOf(lvl) >= min) {
      process.stderr.write(
        `${new Date().toISOString()} ${lvl.toUpperCase()} agentworker: ${message}\n`,
      );
    }
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
