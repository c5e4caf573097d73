// JavaValue.java - the official Java client writes or checks a value, for
// the value-type tests (test_strings.c, test_etype.c). Run as a single-file source
// program: java -cp hazelcast.jar JavaValue.java MEMBERS MAP KEY MODE HEX
// (HEX: the value's UTF-8 bytes in hex, so that no locale touches them)
//   MODE put:    map.put(KEY, the String) as a java.lang.String
//   MODE int:    map.put(KEY, Integer.valueOf(the String))
//   MODE string: exit 0 iff map.get(KEY) is a java.lang.String equal to it
//   MODE bytes:  exit 0 iff map.get(KEY) is a byte[] equal to the bytes
import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.core.HazelcastInstance;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

public class JavaValue {
    public static void main(String[] a) {
        ClientConfig c = new ClientConfig();
        c.setClusterName("dev");
        c.setProperty("hazelcast.logging.type", "none");
        c.getNetworkConfig().addAddress(a[0].split(","));
        HazelcastInstance hz = HazelcastClient.newHazelcastClient(c);
        byte[] raw = new byte[a[4].length() / 2];
        for (int i = 0; i < raw.length; i++) raw[i] = (byte) Integer.parseInt(a[4].substring(2 * i, 2 * i + 2), 16);
        String s = new String(raw, StandardCharsets.UTF_8);
        int rc = 0;
        Object v = null;
        if (a[3].equals("put")) {
            hz.getMap(a[1]).put(a[2], s);
        } else if (a[3].equals("int")) {
            hz.getMap(a[1]).put(a[2], Integer.valueOf(s));
        } else {
            v = hz.getMap(a[1]).get(a[2]);
            boolean ok = a[3].equals("string") ? s.equals(v) : v instanceof byte[] && Arrays.equals((byte[]) v, raw);
            rc = ok ? 0 : 1;
        }
        hz.shutdown();
        System.out.println(rc == 0 ? "ok" : "mismatch: " + (v == null ? "null" : v.getClass().getName()));
        System.exit(rc);
    }
}
