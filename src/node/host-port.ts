/** Network addresses as `HOST:PORT` text (`[::1]:7379` for IPv6). */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses `HOST:PORT`; null when the text is not one (or the port is out of range). */
export function parseHostPort(text: string): HostPort | null {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (match === null || host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    return null;
  }
  return { host, port };
}

export function formatHostPort(address: HostPort): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
