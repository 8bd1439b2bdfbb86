/**
 * The deployed code's environment readers collect what is wrong rather than stop at the first
 * problem, so that one error names every missing or invalid variable.
 */

/** A reader of required variables: each value trimmed; unset or blank gives '' and a problem. */
export function requiredVariables(env: NodeJS.ProcessEnv, problems: string[]): (name: string) => string {
  return (name) => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name} is not set`);
    return value ?? '';
  };
}
