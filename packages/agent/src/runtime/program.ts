// What a container runs under the process runtime (the rules are in process.ts's header): the
// program, resolved to an absolute path and checked before anything is spawned, so that a
// missing or unusable program is a clear RuntimeError rather than a mysterious exit.
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { RuntimeError, type ContainerConfig } from './types.ts';

/** Searched when the container's env has no PATH (the usual default of container images). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What to execute for `config`; throws RuntimeError (ImageNotRunnable, CommandNotFound, RunContainerError). */
export function resolveProgram(config: ContainerConfig): { program: string; args: string[] } {
  const command = config.command ?? [];
  const args = config.args ?? [];
  const cwd = config.workingDir ?? '/';
  if (config.workingDir !== undefined && !isDirectory(config.workingDir)) {
    throw new RuntimeError('RunContainerError', `the working directory "${config.workingDir}" is not a directory on this node`);
  }
  const first = command[0];
  if (first !== undefined) return { program: findExecutable(first, config.env['PATH'] ?? DEFAULT_PATH, cwd), args: [...command.slice(1), ...args] };
  const image = config.image ?? '';
  if (isAbsolute(image)) {
    if (isExecutableFile(image)) return { program: image, args: [...args] };
    throw new RuntimeError('ImageNotRunnable', `the process runtime cannot run image "${image}": there is no executable file at that path on this node; give the container a command (or an image that is an absolute path to an executable)`);
  }
  if (image === '') throw new RuntimeError('ImageNotRunnable', 'the container has neither a command nor an image: the process runtime runs programs on the node; give the container a command');
  throw new RuntimeError('ImageNotRunnable', `the process runtime cannot run image "${image}": it runs programs on the node; give the container a command (or an image that is an absolute path to an executable)`);
}

/** The absolute path of `name`: searched in `path` unless it holds a slash (as execvp does). */
function findExecutable(name: string, path: string, cwd: string): string {
  if (name === '') throw new RuntimeError('CommandNotFound', 'the container\'s command is an empty string; give the program to run');
  if (name.includes('/')) {
    const full = resolve(cwd, name);
    if (isExecutableFile(full)) return full;
    throw new RuntimeError('CommandNotFound', `the command "${name}" (${full}) ${describeMissing(full)} on this node`);
  }
  for (const dir of path.split(':')) {
    const full = resolve(cwd, dir, name); // an empty PATH entry means the working directory
    if (isExecutableFile(full)) return full;
  }
  throw new RuntimeError('CommandNotFound', `the command "${name}" was not found in the container's PATH (${path}) on this node; give an absolute path or set PATH in the container's env`);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function describeMissing(path: string): string {
  try {
    return statSync(path).isFile() ? 'is not executable' : 'is not a file';
  } catch {
    return 'does not exist';
  }
}

