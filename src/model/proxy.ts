/** mocra's ProxyEnum (externally tagged on the wire: {"IpProxy": {...}} or {"Tunnel": {...}}). */
export interface IpProxy {
  ip: string;
  port: number;
  username: string | null;
  password: string | null;
  proxyType: string | null;
  /** f32 on the wire */
  rateLimit: number;
}

export interface Tunnel {
  name: string;
  endpoint: string;
  username: string | null;
  password: string | null;
  tunnelType: string;
  expireTime: string;
  rateLimit: number;
}

export type ProxyEnum = { kind: "IpProxy"; value: IpProxy } | { kind: "Tunnel"; value: Tunnel };
