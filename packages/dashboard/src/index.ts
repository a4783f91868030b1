// The dashboard's files, for a master's API server to serve at /ui: the page itself
// (static/: plain HTML, CSS and an ES module, no framework and no build step) and the browser
// build of the yaml package, which the page uses to apply YAML documents. Read once, at start.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface UiFile {
  readonly type: string;
  readonly body: Buffer;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png' };

function addTree(files: Map<string, UiFile>, root: string, prefix: string): void {
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const type = TYPES[extname(name)];
        if (type !== undefined) files.set(`${prefix}${relative(root, path).split('\\').join('/')}`, { type, body: readFileSync(path) });
      }
    }
  };
  walk(root);
}

/** Every file of the dashboard by its path under /ui ("index.html", "app.js", "vendor/yaml/index.js", …). */
export function dashboardFiles(): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  addTree(files, fileURLToPath(new URL('../static', import.meta.url)), '');
  const yamlMain = createRequire(import.meta.url).resolve('yaml');
  addTree(files, join(dirname(yamlMain), '..', 'browser', 'dist'), 'vendor/yaml/');
  return files;
}
