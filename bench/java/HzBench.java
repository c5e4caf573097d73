/*
 * HzBench - the official Hazelcast Java client doing direct IMap calls: the
 * "what does a JVM client get" baseline beside our C client and the shared
 * cache. One thread, one op at a time, so latencies are round trips.
 *
 *   java -cp CLASSES:hazelcast.jar HzBench --members 127.0.0.1:5781[,...]
 *        [--cluster dev] [--ops 20000] [--warmup 5000] [--keys 1000]
 *        [--sizes 100,1024,65536] [--map hzbench]
 *
 * Scenarios, for each value size: set, get (hit), then containsKey (hit and
 * miss) once. Keys are 16-byte Strings ("k" + 15 digits), values byte[].
 * Prints one JSON line per scenario:
 *   {"client":"java-official","op":"get","value_bytes":100,"ops":20000,
 *    "p50_us":..,"p99_us":..,"mean_us":..,"ops_per_s":..,"errors":0}
 * Every get checks the bytes it read (the value encodes its key and size);
 * a mismatch counts as an error and makes the exit status 1.
 */
import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;

import java.util.Arrays;
import java.util.Locale;

public final class HzBench {
    interface Op { boolean run(int i); } // returns false when the result is wrong

    static String key(int i) { return String.format(Locale.ROOT, "k%015d", i); }

    /** A value whose bytes depend on key index and size, so a get can verify what it read. */
    static byte[] value(int i, int size) {
        byte[] v = new byte[size];
        for (int j = 0; j < size; j++) v[j] = (byte) (i * 31 + j * 7 + size);
        return v;
    }

    static int errors;

    static void measure(String op, int size, int warmup, int ops, Op body) {
        for (int i = 0; i < warmup; i++) body.run(i);
        long[] lat = new long[ops];
        int bad = 0;
        long t0 = System.nanoTime();
        for (int i = 0; i < ops; i++) {
            long s = System.nanoTime();
            if (!body.run(i)) bad++;
            lat[i] = System.nanoTime() - s;
        }
        long total = System.nanoTime() - t0;
        Arrays.sort(lat);
        double mean = Arrays.stream(lat).average().orElse(0) / 1000.0;
        errors += bad;
        System.out.printf(Locale.ROOT,
                "{\"client\":\"java-official\",\"op\":\"%s\",\"value_bytes\":%d,\"ops\":%d,\"p50_us\":%.1f,"
                        + "\"p99_us\":%.1f,\"mean_us\":%.1f,\"ops_per_s\":%.0f,\"errors\":%d}%n",
                op, size, ops, lat[ops / 2] / 1000.0, lat[(int) (ops * 0.99)] / 1000.0, mean,
                ops / (total / 1e9), bad);
        System.out.flush();
    }

    public static void main(String[] argv) {
        String members = null, cluster = "dev", mapName = "hzbench";
        int ops = 20000, warmup = 5000, keys = 1000;
        int[] sizes = {100, 1024, 65536};
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i], v = i + 1 < argv.length ? argv[i + 1] : null;
            if (v == null) { usage(); return; }
            switch (a) {
                case "--members": members = v; break;
                case "--cluster": cluster = v; break;
                case "--ops": ops = Integer.parseInt(v); break;
                case "--warmup": warmup = Integer.parseInt(v); break;
                case "--keys": keys = Integer.parseInt(v); break;
                case "--map": mapName = v; break;
                case "--sizes": sizes = Arrays.stream(v.split(",")).mapToInt(Integer::parseInt).toArray(); break;
                default: usage(); return;
            }
            i++;
        }
        if (members == null || ops < 100 || keys < 1) { usage(); return; }
        System.setProperty("hazelcast.logging.type", "none");
        ClientConfig cfg = new ClientConfig();
        cfg.setClusterName(cluster);
        cfg.setProperty("hazelcast.phone.home.enabled", "false");
        for (String m : members.split(",")) cfg.getNetworkConfig().addAddress(m.trim());
        HazelcastInstance hz = HazelcastClient.newHazelcastClient(cfg);
        try {
            IMap<String, byte[]> map = hz.getMap(mapName);
            map.clear();
            final int nkeys = keys;
            String[] k = new String[nkeys];
            for (int i = 0; i < nkeys; i++) k[i] = key(i);
            for (int size : sizes) {
                byte[][] vals = new byte[nkeys][];
                for (int i = 0; i < nkeys; i++) vals[i] = value(i, size);
                measure("set", size, warmup, ops, i -> { map.set(k[i % nkeys], vals[i % nkeys]); return true; });
                measure("get", size, warmup, ops, i -> Arrays.equals(map.get(k[i % nkeys]), vals[i % nkeys]));
            }
            measure("containsKey", 0, warmup, ops, i -> map.containsKey(k[i % nkeys]));
            measure("containsKey-miss", 0, warmup, ops, i -> !map.containsKey("m" + k[i % nkeys].substring(1)));
            map.destroy();
        } finally {
            hz.shutdown();
        }
        System.exit(errors == 0 ? 0 : 1);
    }

    static void usage() {
        System.err.println("usage: HzBench --members H:P[,H:P...] [--cluster NAME] [--ops N] [--warmup N] "
                + "[--keys N] [--sizes 100,1024,65536] [--map NAME]");
        System.exit(2);
    }
}
