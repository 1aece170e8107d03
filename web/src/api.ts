// The corrald API as the page uses it: a session cookie (HttpOnly, so never seen here) and the
// session's CSRF token on every request that changes something (docs/api.md "Web UI sessions").

/** An answer that was not a 2xx: the API's {"error": {"status", "field", "message"}}. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly field: string | undefined, message: string) {
    super(message);
  }
}

export interface Session {
  signed_in_as: string;
  csrf_token: string;
  expires_at: string;
}

let csrfToken = "";
let onSignedOut: (() => void) | undefined;

export function useSession(session: Session | undefined): void {
  csrfToken = session?.csrf_token ?? "";
}

/** The session's CSRF token, for requests made without call() (uploads: upload.ts). */
export const csrf = () => csrfToken;

/** Called when an answer says the session is gone (expired, signed out elsewhere, restart). */
export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, undefined, "corrald cannot be reached");
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const error = (data as { error?: { field?: string; message?: string } } | null)?.error;
    if (response.status === 401 && error?.field === "session" && onSignedOut) onSignedOut();
    throw new ApiError(response.status, error?.field, error?.message ?? `${response.status} ${response.statusText}`);
  }
  return data as T;
}

export const get = <T>(path: string) => call<T>("GET", path);

export interface Task {
  id: string;
  kind: string;
  target: string;
  status: string;
  progress: number;
  message: string;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

/** Waits for a task to end (long-polls); throws its error when it failed. */
export async function waitTask(id: string): Promise<Task> {
  for (;;) {
    const task = await get<Task>(`/api/v1/tasks/${encodeURIComponent(id)}?wait=30`);
    if (task.status === "queued" || task.status === "running") continue;
    if (task.status !== "succeeded") throw new ApiError(0, undefined, task.error ?? `task ${task.status}`);
    return task;
  }
}

/** wss://this-host/PATH: the console and event WebSockets (the cookie goes along). */
export function socketUrl(path: string): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

export interface Vm {
  name: string;
  state: string;
  engine: string;
  vcpus: number;
  memory_mib: number;
  image: string | null;
  disks: { pool: string; volume: string; readonly: boolean }[];
  nics: { network?: string; bridge?: string; tap?: string; mac: string; ipv4?: string | null; ipv6?: string | null }[];
  restart_policy: string;
  cmdline: string;
  pid: number | null;
  state_reason: string;
  started_at: string | null;
  uptime_seconds: number | null;
  restarts: number;
  last_crash: string | null;
  last_console?: string;
  /** The screen's size, or null: no display, keyboard or pointer (GET /vms/{name}/vnc answers 409). */
  display?: { width: number; height: number } | null;
  /** The balloon target kept with the VM and applied at every start (MiB); null: none. */
  balloon_target_mib?: number | null;
  /** A running VM's balloon (GET /vms/{name}/balloon); null while it does not run. */
  balloon?: Balloon | null;
}

/** GET/PUT /vms/{name}/balloon (docs/api.md "Memory balloon"). */
export interface Balloon {
  memory_mib: number;
  target_mib: number;
  kept: boolean;
  actual_mib: number | null;
  inflated_mib: number | null;
  guest_memory_total_bytes: number | null;
  guest_memory_available_bytes: number | null;
}

export interface Host {
  hostname: string;
  version: string;
  cpus: number;
  memory_mib: number;
  default_engine: string;
  engines: Record<string, { available: boolean; reason: string }>;
  calibration: { reason: string };
}

export interface Pool {
  name: string;
  driver: string;
  path: string;
  capacity_bytes: number;
  allocation_bytes: number;
  available_bytes: number;
  volumes: number;
}

export interface Volume {
  pool: string;
  name: string;
  format: string;
  size_bytes: number;
  allocation_bytes: number;
  backing: { pool: string; volume: string } | null;
  used_by: string[];
}

/** A metrics history series (GET /vms/{name}/metrics?since=&step=, GET /host/metrics). */
export interface Series {
  interval_seconds: number;
  step_seconds: number;
  time: number[];
  cpu: (number | null)[];
  memory_bytes: (number | null)[];
  disk_read_bytes_per_second?: (number | null)[];
  disk_write_bytes_per_second?: (number | null)[];
  net_rx_bytes_per_second?: (number | null)[];
  net_tx_bytes_per_second?: (number | null)[];
  cpus?: number;
  memory_total_bytes?: number;
  // A VM's "why is it slow" columns and verdicts (web/src/pages/slow.ts).
  vcpu_run_delay?: (number | null)[];
  cpu_throttled?: (number | null)[];
  disk_read_latency_ms?: (number | null)[];
  disk_write_latency_ms?: (number | null)[];
  diagnosis?: { window_seconds: number; causes: SlowCause[] };
  // A VM's guest memory, from its balloon statistics (null until the guest reported them).
  guest_memory_total_bytes?: (number | null)[];
  guest_memory_available_bytes?: (number | null)[];
}

/** One cause in GET /vms/{name}/metrics's diagnosis (src/daemon/slow_diagnosis.h). */
export interface SlowCause {
  cause: string;
  value: number | null;
  unit: "fraction" | "ms";
  level: "ok" | "warning" | "problem" | "unknown";
  verdict: string;
  fix: string;
}

/** A VM snapshot (GET /vms/{name}/snapshots): `parent` and `current` make the tree. */
export interface Snapshot {
  vm: string;
  name: string;
  description: string;
  kind: string;
  engine: string;
  status: string;
  size_bytes: number;
  vcpus: number;
  memory_mib: number;
  created_at: string;
  parent: string | null;
  current: boolean;
}

/** A NIC as GET /vms/{name} shows it; `groups` only on managed (nat, isolated) networks. */
export interface Nic {
  network?: string;
  bridge?: string;
  tap?: string;
  mac: string;
  ipv4?: string | null;
  /** The address the guest makes by SLAAC on a network with a subnet6. */
  ipv6?: string | null;
  groups?: string[];
}

/** A managed network (GET /networks). */
export interface Network {
  name: string;
  kind: string;
  bridge: string;
  parent: string | null;
  vlan_id: number | null;
  subnet4: string | null;
  gateway4: string | null;
  dhcp_start: string | null;
  dhcp_end: string | null;
  subnet6: string | null;
  gateway6: string | null;
  mtu: number;
  dns_forwarders?: string[];
  reservations?: Reservation[];
  vms: string[];
  created_at: string;
  status?: { bridge_present: boolean; problems: string[] };
}

/** A static DHCP reservation of a network (MAC to IPv4). */
export interface Reservation {
  mac: string;
  ipv4: string;
  hostname?: string | null;
}

export interface Lease {
  ipv4: string;
  mac: string;
  hostname: string;
  expires: number;
}

/** A firewall rule of a security group (docs/api.md "Security groups"). */
export interface SecurityRule {
  index: number;
  direction: "in" | "out";
  protocol: "tcp" | "udp" | "icmp" | "any";
  port_from: number | null;
  port_to: number | null;
  remote_cidr: string | null;
  remote_group: string | null;
  summary: string;
}

/** A security group (GET /security-groups). */
export interface SecurityGroup {
  name: string;
  description: string;
  rules: SecurityRule[];
  vms: string[];
  created_at: string;
}

/** One VM (or the host) an alarm has measured since corrald started (GET /alarms). */
export interface AlarmTarget {
  target: string;
  state: "ok" | "pending" | "firing";
  value: number;
  measured_at: string;
  breached_since: string | null;
  firing_since: string | null;
}

/** A threshold rule on a metric, with its state (GET /alarms). */
export interface Alarm {
  name: string;
  metric: string;
  vm: string | null;
  above: number | null;
  below: number | null;
  for_seconds: number;
  webhook: string | null;
  created_at: string;
  state: "ok" | "firing";
  last_webhook_error: string | null;
  targets: AlarmTarget[];
}

/** A backup repository corrald knows by name (GET /backup-repositories). */
export interface BackupRepository {
  name: string;
  path: string;
  key: string | null;
  encrypted: boolean;
  created_at: string;
  /** null, with `error` saying why, when it cannot be opened now. */
  backups: number | null;
  chunk_size: number | null;
  error: string | null;
}

/** A complete backup (GET /backups). */
export interface Backup {
  id: string;
  vm: string;
  repository: string;
  created_at: string;
  disk_count: number;
  logical_bytes: number;
  chunks: number;
  new_chunks: number;
  new_bytes: number;
  verify: { state: "ok" | "bad" | null; at: string | null; error: string | null };
  /** The last boot check (`backup verify --boot`): absent or state null when never run. */
  boot?: { state: "passed" | "failed" | null; at: string | null; seconds: number | null; error: string | null };
}

/** Follows a task until it ends, calling `progress` with each new look at it (every half second:
 *  GET /tasks/{id}?wait= answers only at the end, and a progress bar wants the steps between). */
export async function followTask(id: string, progress: (task: Task) => void): Promise<Task> {
  for (;;) {
    const task = await get<Task>(`/api/v1/tasks/${encodeURIComponent(id)}`);
    progress(task);
    if (task.status !== "queued" && task.status !== "running") {
      if (task.status !== "succeeded") throw new ApiError(0, undefined, task.error ?? `task ${task.status}`);
      return task;
    }
    await new Promise((resolve) => window.setTimeout(resolve, 500));
  }
}
