// PutInteger.java - puts a java.lang.Integer value with the official Java
// client, for the HZSHM_ETYPE test (test_etype.c). Run as a single-file
// source program: java -cp hazelcast.jar PutInteger.java MEMBERS MAP KEY N
import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.core.HazelcastInstance;

public class PutInteger {
    public static void main(String[] a) {
        ClientConfig c = new ClientConfig();
        c.setClusterName("dev");
        c.setProperty("hazelcast.logging.type", "none");
        c.getNetworkConfig().addAddress(a[0].split(","));
        HazelcastInstance hz = HazelcastClient.newHazelcastClient(c);
        hz.getMap(a[1]).put(a[2], Integer.valueOf(a[3]));
        hz.shutdown();
        System.out.println("ok");
    }
}
