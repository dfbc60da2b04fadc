/** The server's settings (architecture.md §3) from the `rltab.*` configuration. Pure. */

export interface ConfigReader {
  get(key: string): unknown;
}

export interface ServerSettings {
  learning: { enabled: boolean };
  silenceThreshold?: number;
  maxLines?: number;
  debounceMs?: number;
  threads?: number;
  context?: boolean;
}

/** initializationOptions: only what the user set, so the server's defaults stay the defaults. */
export function serverSettings(config: ConfigReader): ServerSettings {
  const settings: ServerSettings = { learning: { enabled: config.get('learning.enabled') === true } };
  for (const key of ['silenceThreshold', 'maxLines', 'debounceMs', 'threads'] as const) {
    const value = config.get(key);
    if (typeof value === 'number') settings[key] = value;
  }
  const context = config.get('context');
  if (typeof context === 'boolean') settings.context = context;
  return settings;
}
