// Writes crds/*.yaml from src/api, and the Helm chart's copy in charts/failwatch/crds/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { CRD_FILES, crdYaml } from '../src/api/crd-manifests.ts';

for (const folder of ['crds/', 'charts/failwatch/crds/']) {
  const dir = new URL(`../${folder}`, import.meta.url);
  mkdirSync(dir, { recursive: true });
  for (const [file, build] of Object.entries(CRD_FILES)) {
    writeFileSync(new URL(file, dir), crdYaml(build));
    console.log(`wrote ${folder}${file}`);
  }
}
