// Creates ALLOW ACLs through Kafka's own Admin API (the 4.x jars the suite fetches carry no
// AclCommand, and aiokafka speaks only CreateAcls v0-v1, which Kafka 4 removed).
// Run with Java's source launcher:  java -cp 'libs/*' KafkaAcls.java admin.properties ACL...
// Each ACL is  principal,operation,resourceType,name,patternType
//   e.g.  User:publisher,WRITE,TOPIC,denyproxy.rules,LITERAL
import java.io.FileInputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class KafkaAcls {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        List<AclBinding> acls = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            String[] f = args[i].split(",");
            ResourcePattern pattern = new ResourcePattern(
                ResourceType.valueOf(f[2]), f[3], PatternType.valueOf(f[4]));
            AccessControlEntry entry = new AccessControlEntry(
                f[0], "*", AclOperation.valueOf(f[1]), AclPermissionType.ALLOW);
            acls.add(new AclBinding(pattern, entry));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(acls).all().get();
        }
    }
}
