// In-process command socket for protocol tests: the real component on a temp dir, a fake daemon
// context recording stop requests, and openssl-made certificates.
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { parseConfig } from "../../../src/config/index.js";
import { CommandComponent } from "../../../src/proxy/command/index.js";
import { CommandClient } from "../../../src/proxy/command/client.js";
import { setLogLevel } from "../../../src/log.js";

if (!process.env.STEVEDORE_TEST_VERBOSE) setLogLevel("warn");

const run = promisify(execFile);

export interface Harness {
  dir: string;
  stateDir: string;
  socket: string;
  comp: CommandComponent;
  stops: boolean[];
  client(): Promise<CommandClient>;
  /** stop the component; the temp dir is removed unless `keep` */
  close(keep?: boolean): Promise<void>;
}

export async function startCommand(opts: { dir?: string; extra?: string } = {}): Promise<Harness> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "cmd-test-")));
  const stateDir = join(dir, "state");
  const socket = join(dir, "command.sock");
  await mkdir(stateDir, { recursive: true, mode: 0o700 }); // as the daemon does
  const config = parseConfig(`state_dir = "${stateDir}"\ncommand_socket_path = "${socket}"\n${opts.extra ?? ""}\n`, "test.conf", {});
  const stops: boolean[] = [];
  const comp = new CommandComponent({
    config,
    requestStop: async (graceful: boolean) => {
      stops.push(graceful);
    },
    inherit: async () => false,
    handedOver: () => false,
    launchSuccessor: async () => ({ ok: false, reason: "test: no new master" }),
    stopAccepting: async () => {},
  });
  await comp.start();
  const clients: CommandClient[] = [];
  return {
    dir, stateDir, socket, comp, stops,
    async client() {
      const c = await CommandClient.connect(socket);
      clients.push(c);
      return c;
    },
    async close(keep = false) {
      for (const c of clients) c.close();
      await comp.stop(false, performance.now());
      if (!opts.dir && !keep) await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestCert {
  cert: string;
  key: string;
  fingerprint: string;
}

/** A self-signed EC certificate with the given DNS names (first one is the CN). */
export async function makeCert(dir: string, names: string[], tag: string): Promise<TestCert> {
  const certPath = join(dir, `${tag}.crt`);
  const keyPath = join(dir, `${tag}.key`);
  await run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", `/CN=${names[0]}`,
    "-addext", `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
  ]);
  const cert = await readFile(certPath, "utf8");
  const { stdout } = await run("openssl", ["x509", "-in", certPath, "-noout", "-fingerprint", "-sha256"]);
  const fingerprint = stdout.trim().split("=")[1]!.replace(/:/g, "").toLowerCase();
  return { cert, key: await readFile(keyPath, "utf8"), fingerprint };
}
