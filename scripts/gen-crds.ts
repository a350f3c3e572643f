// Writes crds/*.yaml from src/api.
import { mkdirSync, writeFileSync } from 'node:fs';
import { CRD_FILES, crdYaml } from '../src/api/crd-manifests.ts';

const dir = new URL('../crds/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [file, build] of Object.entries(CRD_FILES)) {
  writeFileSync(new URL(file, dir), crdYaml(build));
  console.log(`wrote crds/${file}`);
}
