// Test access to the real Docker engine. Under STEVEDORE_TEST_DOCKER=required (CI) a Docker
// test that cannot reach the engine fails; otherwise it is skipped.
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, writeFile, symlink, copyFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TestContext } from "node:test";
import { DockerClient } from "../../src/docker/index.js";

export const run = promisify(execFile);
export const DOCKER_SOCKET = process.env.DOCKER_HOST?.startsWith("unix://") ? process.env.DOCKER_HOST.slice(7) : "/var/run/docker.sock";
export const TEST_IMAGE = "stevedore-test/busybox:latest";
const APPLETS = ["sh", "httpd", "sleep", "wget", "cat", "env", "echo", "ls", "true", "false", "nc", "printf", "mkdir", "touch", "kill", "ps"];

let reachable: Promise<boolean> | undefined;
export function dockerReachable(): Promise<boolean> {
  reachable ??= new DockerClient(DOCKER_SOCKET).ping().then(() => true, () => false);
  return reachable;
}

/** Call first in every Docker test: skips (or, when required, fails) without an engine. */
export async function needDocker(t: TestContext): Promise<boolean> {
  if (await dockerReachable()) return true;
  if (process.env.STEVEDORE_TEST_DOCKER === "required") throw new Error(`Docker is required (STEVEDORE_TEST_DOCKER=required) but ${DOCKER_SOCKET} does not answer`);
  t.skip(`no Docker engine at ${DOCKER_SOCKET}`);
  return false;
}

let image: Promise<string> | undefined;
/** Build stevedore-test/busybox:latest once per run with `docker import` from Debian's static busybox. Nothing is pulled. */
export function ensureTestImage(): Promise<string> {
  image ??= buildTestImage();
  return image;
}

async function buildTestImage(): Promise<string> {
  const existing = await run("docker", ["image", "inspect", "--format", "{{.Id}}", TEST_IMAGE]).catch(() => undefined);
  if (existing) return TEST_IMAGE;
  const root = await mkdtemp(join(tmpdir(), "stevedore-img-"));
  try {
    const fs = join(root, "rootfs");
    for (const d of ["bin", "www", "tmp", "etc"]) await mkdir(join(fs, d), { recursive: true });
    await copyFile("/bin/busybox", join(fs, "bin/busybox"));
    for (const a of APPLETS) await symlink("busybox", join(fs, "bin", a));
    await writeFile(join(fs, "www/index.html"), "stevedore test image\n");
    await writeFile(join(fs, "www/health"), "ok\n");
    await writeFile(join(fs, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n");
    await writeFile(join(fs, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    const tar = join(root, "rootfs.tar");
    await run("tar", ["-C", fs, "-cf", tar, "."]);
    await run("docker", [
      "import", "--change", 'CMD ["/bin/httpd","-f","-p","8080","-h","/www"]', "--change", "ENV PATH=/bin",
      "--change", "EXPOSE 8080", tar, TEST_IMAGE,
    ], { maxBuffer: 1 << 20 });
    return TEST_IMAGE;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Remove every container carrying a label (test cleanup; each test file uses its own label value). */
export async function removeLabeled(label: string): Promise<void> {
  const { stdout } = await run("docker", ["ps", "-aq", "--filter", `label=${label}`]);
  const ids = stdout.split("\n").filter(Boolean);
  if (ids.length) await run("docker", ["rm", "-f", "-v", ...ids]).catch(() => {});
}

/** Wait for a condition with a deadline (no sleeps as synchronisation). The default deadline is
 *  generous: it only bounds a failure, and CI is a loaded machine several times slower than this one. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, intervalMs = 10): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
