// `npm ci` installs exactly package-lock.json on any platform: the lock must name every
// platform's optional package of the dev tools (biome, typescript), not only this machine's,
// and agree with package.json.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

type Entry = {
  version?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
};
const read = (path: string) => JSON.parse(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'));
const pkg = read('package.json') as Entry;
const lock = read('package-lock.json') as { lockfileVersion: number; packages: Record<string, Entry> };

/** Where npm finds `name` from the package at `from`: nested first, then each parent up to the root. */
function resolve(from: string, name: string): Entry | undefined {
  for (let dir = from; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/node_modules/')))) {
    const hit = lock.packages[`${dir ? `${dir}/` : ''}node_modules/${name}`];
    if (hit || dir === '') return hit;
  }
}

describe('package-lock.json', () => {
  it('has the dependencies of package.json, as npm ci requires', () => {
    assert.equal(lock.lockfileVersion, 3);
    const root = lock.packages['']!;
    assert.deepEqual(root.dependencies, pkg.dependencies);
    assert.deepEqual(root.devDependencies, pkg.devDependencies);
  });

  it("names every package's optional dependencies, for every platform", () => {
    const missing: string[] = [];
    let platformPackages = 0;
    for (const [path, entry] of Object.entries(lock.packages))
      for (const name of Object.keys(entry.optionalDependencies ?? {})) {
        const found = resolve(path, name);
        if (!found) missing.push(`${path || '(root)'} -> ${name}`);
        else if (found.os || found.cpu) platformPackages++;
      }
    assert.deepEqual(missing, []);
    // biome: 10 platforms; typescript 7: 20.
    assert.ok(platformPackages >= 30, `${platformPackages} platform packages`);
    for (const name of [
      '@biomejs/cli-darwin-arm64',
      '@biomejs/cli-win32-x64',
      '@biomejs/cli-linux-arm64-musl',
    ])
      assert.ok(lock.packages[`node_modules/${name}`], name);
  });
});
