// Worker settings from the AGENTWORKER_* environment (spec section 16.1).
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";

/** TLS material as PEM bytes; `cert` and `key` together enable mutual TLS. */
export interface TlsConfig {
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly serverName: string | undefined;
}

/** Where and how a worker connects. */
export interface WorkerConfig {
  /** The host address, HOST:PORT. */
  readonly address: string;
  /** The client-id sent on every call (AWP-CONN-002); kept across reconnects. */
  readonly clientId: string;
  readonly tls: TlsConfig | undefined;
  /** A bearer token sent as `authorization: Bearer <token>` on every call. */
  readonly token: string | undefined;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Returns the host part of HOST:PORT (IPv6 in brackets allowed). */
export function hostOf(address: string): string {
  const bare = address.replace(/^dns:\/\/\/|^ipv4:|^ipv6:/, "");
  if (bare.startsWith("[")) {
    return bare.slice(1, bare.indexOf("]"));
  }
  const colon = bare.lastIndexOf(":");
  return colon < 0 ? bare : bare.slice(0, colon);
}

/** Does the address name this machine (localhost or a loopback IP)? */
export function isLoopback(address: string): boolean {
  const host = hostOf(address).toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) {
    return true;
  }
  if (isIP(host) === 4) {
    return host.startsWith("127.");
  }
  return isIP(host) === 6 && (host === "::1" || host === "0:0:0:0:0:0:0:1");
}

/** Checks a config: mutual TLS needs cert and key; a token needs TLS or loopback (AWP-SEC-007). */
export function validateConfig(config: WorkerConfig): WorkerConfig {
  if (config.address === "") {
    throw new ConfigError("no host address (AGENTWORKER_HOST_ADDRESS is not set)");
  }
  if (config.clientId === "") {
    throw new ConfigError("the client-id must not be empty");
  }
  const tls = config.tls;
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ConfigError("mutual TLS needs both a client certificate and its key");
  }
  if (config.token !== undefined && tls === undefined && !isLoopback(config.address)) {
    throw new ConfigError(
      `refusing to send a bearer token in clear to ${config.address}: set AGENTWORKER_TLS_CA`,
    );
  }
  return config;
}

/** Reads AWP-CNF-001's variables; AGENTWORKER_HOST_ADDRESS is required. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const read = (name: string): Buffer | undefined => {
    const path = value(name);
    return path === undefined ? undefined : readFileSync(path);
  };
  const ca = read("AGENTWORKER_TLS_CA");
  const cert = read("AGENTWORKER_TLS_CERT");
  const key = read("AGENTWORKER_TLS_KEY");
  const tls =
    ca !== undefined || cert !== undefined || key !== undefined
      ? { ca, cert, key, serverName: value("AGENTWORKER_TLS_SERVER_NAME") }
      : undefined;
  return validateConfig({
    address: value("AGENTWORKER_HOST_ADDRESS") ?? "",
    clientId: value("AGENTWORKER_CLIENT_ID") ?? randomUUID(),
    tls,
    token: value("AGENTWORKER_TOKEN"),
  });
}
