// crds/ is generated from src/api; a change to one without the other fails here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CRD_FILES, crdYaml } from '../../src/api/crd-manifests.ts';

test('crds/*.yaml match src/api (run `npm run gen:crds` after changing the API)', () => {
  for (const [file, build] of Object.entries(CRD_FILES)) {
    const onDisk = readFileSync(new URL(`../../crds/${file}`, import.meta.url), 'utf8');
    assert.equal(onDisk, crdYaml(build), `crds/${file} is out of date: run npm run gen:crds`);
  }
});
