// The in-cluster roles this executable provides, by name.
import type { RoleDefinition, RoleRegistry } from './role/role';

const roles: readonly RoleDefinition[] = [];

export const roleRegistry: RoleRegistry = new Map(roles.map((role) => [role.name, role]));
