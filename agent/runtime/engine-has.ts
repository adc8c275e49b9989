/**
 * Whether the engine has an object, from its inspect call: a 404 says no; any other failure is
 * a real error and is thrown.
 */
export function engineHas(inspecting: Promise<unknown>): Promise<boolean> {
  return inspecting.then(
    () => true,
    (error: { statusCode?: number }) => {
      if (error.statusCode === 404) return false;
      throw error;
    },
  );
}
