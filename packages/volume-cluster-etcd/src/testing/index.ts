export { EtcdTestCluster } from './etcd-cluster.js';
export type { EtcdTestClusterOptions } from './etcd-cluster.js';
export { GlobalVolumePlugin, GLOBAL_VOLUME_PLUGIN_SCRIPT } from './global-volume-plugin.js';
