import Type, { type Static, type TSchema, type TOptional } from 'typebox';

type Defaulted<R extends boolean, T extends TSchema> = R extends true ? T : TOptional<T>;
function defaulted<R extends boolean, T extends TSchema>(resolved: R, schema: T): Defaulted<R, T> {
  return (resolved ? schema : Type.Optional(schema)) as Defaulted<R, T>;
}
function build<R extends boolean>(r: R) {
  return Type.Object({
    name: Type.String(),
    interval: defaulted(r, Type.String({ default: '100ms' })),
    nested: defaulted(r, Type.Object({ a: defaulted(r, Type.Number({ default: 1 })), b: Type.Optional(Type.String()) }, { default: {} })),
    list: Type.Array(Type.Object({ x: defaulted(r, Type.Boolean({ default: true })) })),
  });
}
const Input = build(false);
const Resolved = build(true);
type I = Static<typeof Input>;
type R = Static<typeof Resolved>;
const i: I = { name: 'x', list: [{}] };
const r: R = { name: 'x', interval: '1s', nested: { a: 1 }, list: [{ x: true }] };
// @ts-expect-error interval required in resolved
const bad: R = { name: 'x', nested: { a: 1 }, list: [] };
console.log(i, r, bad, JSON.stringify(Input));
