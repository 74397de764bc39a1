// For tests of this package and of the packages above it: a real managed volume plugin that
// containerd and runc can run.
export { buildVolumePluginDir, packPluginDir, volumePluginRequirements, VOLUME_PLUGIN_SOURCE } from './volume-plugin-fixture.js';
export type { VolumePluginOptions, VolumePluginDir } from './volume-plugin-fixture.js';
