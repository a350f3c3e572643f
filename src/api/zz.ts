import { stringify } from 'yaml';
import { experimentOpenApiSchema } from './openapi-schema.ts';
const s = experimentOpenApiSchema() as any;
console.log(stringify(s.properties.spec.properties.endpoints).slice(0, 5000));
console.log(stringify(s.properties.spec['x-kubernetes-validations']));
console.log(JSON.stringify(s).length);
