/*
 * NearBench - the official Java client's near cache as a peer of bench_app
 * (issue 15): the same IMap contents (the map bench_app filled, left in the
 * cluster with --keep-map), the same lookups (the index sequences bench_app
 * wrote), timed the same way (a plain loop of map.get, one clock pair per
 * chunk of the loop, no per-call timer; mean ns per lookup).
 *
 *   java -cp CLASSES:hazelcast.jar NearBench --members 127.0.0.1:5781 --map NAME
 *        --entries N --seq-dir DIR [--format BINARY|OBJECT] [--reps 3] [--cluster dev] [--destroy]
 *
 * --destroy (last argument) destroys the IMap afterwards.
 *
 * The near cache holds every entry (ENTRY_COUNT eviction sized to N, no
 * expiry); it is filled by getAll in batches and checked to hold N entries
 * before timing. Prints one JSON line.
 */
import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.config.EvictionConfig;
import com.hazelcast.config.EvictionPolicy;
import com.hazelcast.config.InMemoryFormat;
import com.hazelcast.config.MaxSizePolicy;
import com.hazelcast.config.NearCacheConfig;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

public class NearBench {
    static final String[] PATTERNS = {"hot", "zipf", "uniform"};
    static final int CHUNKS = 16, VSIZE = 100;
    static long sink;
    static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    static int[] readSeq(String dir, String name) throws IOException {
        byte[] b = Files.readAllBytes(Paths.get(dir, name + ".u32"));
        int[] s = new int[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(s);
        return s;
    }

    // mean ns over seq[0..len); out[0] = the median of the chunk means, out[1] =
    // this thread's CPU ns per lookup
    static double loop(IMap<String, byte[]> map, String[] keys, int[] seq, int len, double[] out) {
        int per = len / CHUNKS;
        long[] t = new long[CHUNKS + 1];
        long sum = 0, bad = 0;
        long cpu0 = THREADS.getCurrentThreadCpuTime();
        t[0] = System.nanoTime();
        for (int c = 0; c < CHUNKS; c++) {
            for (int i = c * per; i < (c + 1) * per; i++) {
                byte[] v = map.get(keys[seq[i]]);
                if (v == null || v.length != VSIZE) bad++; else sum += v[0];
            }
            t[c + 1] = System.nanoTime();
        }
        if (out != null) out[1] = (double) (THREADS.getCurrentThreadCpuTime() - cpu0) / ((long) per * CHUNKS);
        if (bad != 0) throw new IllegalStateException(bad + " lookups did not return the 100-byte value");
        long[] m = new long[CHUNKS];
        for (int c = 0; c < CHUNKS; c++) m[c] = t[c + 1] - t[c];
        Arrays.sort(m);
        if (out != null) out[0] = (m[CHUNKS / 2 - 1] + m[CHUNKS / 2]) / 2.0 / per;
        sink += sum;
        return (double) (t[CHUNKS] - t[0]) / ((long) per * CHUNKS);
    }

    public static void main(String[] argv) throws Exception {
        String members = null, cluster = "dev", mapName = null, dir = null, format = "BINARY";
        int n = 0, reps = 3;
        boolean destroy = false;
        if (argv.length > 0 && argv[argv.length - 1].equals("--destroy")) {
            destroy = true;
            argv = Arrays.copyOf(argv, argv.length - 1);
        }
        for (int i = 0; i + 1 < argv.length; i += 2) {
            String a = argv[i], v = argv[i + 1];
            switch (a) {
                case "--members": members = v; break;
                case "--cluster": cluster = v; break;
                case "--map": mapName = v; break;
                case "--seq-dir": dir = v; break;
                case "--format": format = v; break;
                case "--entries": n = Integer.parseInt(v); break;
                case "--reps": reps = Integer.parseInt(v); break;
                default: usage(); return;
            }
        }
        if (members == null || mapName == null || dir == null || n < 1 || reps < 1 || argv.length % 2 != 0) {
            usage();
            return;
        }
        System.setProperty("hazelcast.logging.type", "none");
        ClientConfig cfg = new ClientConfig();
        cfg.setClusterName(cluster);
        cfg.setProperty("hazelcast.phone.home.enabled", "false");
        for (String m : members.split(",")) cfg.getNetworkConfig().addAddress(m.trim());
        NearCacheConfig nc = new NearCacheConfig(mapName)
                .setInMemoryFormat(InMemoryFormat.valueOf(format))
                .setInvalidateOnChange(true)
                .setEvictionConfig(new EvictionConfig().setEvictionPolicy(EvictionPolicy.NONE)
                        .setMaxSizePolicy(MaxSizePolicy.ENTRY_COUNT).setSize(n + 1000));
        cfg.addNearCacheConfig(nc);
        HazelcastInstance hz = HazelcastClient.newHazelcastClient(cfg);
        try {
            IMap<String, byte[]> map = hz.getMap(mapName);
            String[] keys = new String[n];
            for (int i = 0; i < n; i++) keys[i] = String.format(Locale.ROOT, "k%015d", i);
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i += 1000) {
                Set<String> batch = new HashSet<>(Arrays.asList(keys).subList(i, Math.min(n, i + 1000)));
                Map<String, byte[]> got = map.getAll(batch);
                if (got.size() != batch.size())
                    throw new IllegalStateException("IMap " + mapName + " lacks entries: got " + got.size());
            }
            double warmS = (System.nanoTime() - t0) / 1e9;
            long owned = map.getLocalMapStats().getNearCacheStats().getOwnedEntryCount();
            if (owned < n) throw new IllegalStateException("near cache holds " + owned + " of " + n + " entries");
            long misses0 = map.getLocalMapStats().getNearCacheStats().getMisses();
            int[][] seq = new int[PATTERNS.length][];
            for (int p = 0; p < PATTERNS.length; p++) seq[p] = readSeq(dir, PATTERNS[p]);
            double[][] mean = new double[PATTERNS.length][reps], robust = new double[PATTERNS.length][reps],
                    cpu = new double[PATTERNS.length][reps];
            double[] out = new double[2];
            for (int r = 0; r < reps; r++) {
                for (int p = 0; p < PATTERNS.length; p++) {
                    loop(map, keys, seq[p], seq[p].length / 4 * (r == 0 ? 4 : 1), null); // warm-up (JIT on the first)
                    mean[p][r] = loop(map, keys, seq[p], seq[p].length, out);
                    robust[p][r] = out[0];
                    cpu[p][r] = out[1];
                }
            }
            long misses = map.getLocalMapStats().getNearCacheStats().getMisses() - misses0;
            StringBuilder sb = new StringBuilder();
            sb.append(String.format(Locale.ROOT,
                    "{\"client\":\"java-near-cache\",\"format\":\"%s\",\"entries\":%d,\"lookups\":%d,\"reps\":%d,"
                            + "\"warm_s\":%.2f,\"near_cache_entries\":%d,\"near_cache_misses\":%d,\"mean_ns\":{",
                    format, n, seq[0].length, reps, warmS, owned, misses));
            for (int p = 0; p < PATTERNS.length; p++) {
                sb.append(p > 0 ? "," : "").append('"').append(PATTERNS[p]).append("\":[");
                for (int r = 0; r < reps; r++) sb.append(r > 0 ? "," : "").append(String.format(Locale.ROOT, "%.2f", mean[p][r]));
                sb.append(']');
            }
            sb.append("},\"chunk_median_ns\":{");
            for (int p = 0; p < PATTERNS.length; p++) {
                sb.append(p > 0 ? "," : "").append('"').append(PATTERNS[p]).append("\":[");
                for (int r = 0; r < reps; r++) sb.append(r > 0 ? "," : "").append(String.format(Locale.ROOT, "%.2f", robust[p][r]));
                sb.append(']');
            }
            sb.append("},\"cpu_ns\":{");
            for (int p = 0; p < PATTERNS.length; p++) {
                sb.append(p > 0 ? "," : "").append('"').append(PATTERNS[p]).append("\":[");
                for (int r = 0; r < reps; r++) sb.append(r > 0 ? "," : "").append(String.format(Locale.ROOT, "%.2f", cpu[p][r]));
                sb.append(']');
            }
            sb.append("},\"median_ns\":{");
            for (int p = 0; p < PATTERNS.length; p++) {
                double[] v = mean[p].clone();
                Arrays.sort(v);
                sb.append(p > 0 ? "," : "").append(String.format(Locale.ROOT, "\"%s\":%.2f", PATTERNS[p], v[reps / 2]));
            }
            sb.append(String.format(Locale.ROOT, "},\"sink\":%d}", sink & 1));
            System.out.println(sb);
            if (destroy) map.destroy();
            if (misses != 0) {
                System.err.println("NearBench: " + misses + " near-cache misses during the timed loops");
                System.exit(1);
            }
        } finally {
            hz.shutdown();
        }
    }

    static void usage() {
        System.err.println("usage: NearBench --members H:P --map NAME --entries N --seq-dir DIR "
                + "[--format BINARY|OBJECT] [--reps 3] [--cluster dev]");
        System.exit(2);
    }
}
