// The install manifests of the mesh and the API paths of their kinds. Pure.
export * from './objects';
export * from './plan';
export * from './rbac';
export * from './resources';
export * from './workloads';
