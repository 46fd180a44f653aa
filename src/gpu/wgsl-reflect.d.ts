// The package's ESM build lives at a subpath its typings do not name; the API is the same.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
