-- The Kinesis Data Analytics application of the AWS Solution "Real-Time Insights on AWS Account
-- Activity" (aws-solutions/real-time-insights-account-activity, Apache License 2.0):
-- deployment/real-time-insights-account-activity.template, ApplicationCode, unchanged.
CREATE STREAM "DESTINATION_SQL_STREAM"
    ( eventTimeStamp TIMESTAMP, computationType VARCHAR(256), category VARCHAR(1024), subCategory VARCHAR(1024),
        unit VARCHAR(256), unitValue BIGINT);
CREATE STREAM "DESTINATION_ANOMALY_STREAM"
    ( eventTimeStamp TIMESTAMP, computationType VARCHAR(256), category VARCHAR(1024), subCategory VARCHAR(1024),
        unit VARCHAR(256), anomalyScore DOUBLE);
CREATE STREAM "TOTAL_CALL_COUNT_STREAM" 
 (eventTimeStamp TIMESTAMP, callCount BIGINT);

CREATE OR REPLACE PUMP "PUMP_FOR_TOTAL_CALL_COUNT" AS
  INSERT INTO "TOTAL_CALL_COUNT_STREAM" 
  SELECT STREAM STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND) eventTimeStamp, COUNT(*) totalCalls 
       FROM "SOURCE_SQL_STREAM_001" cloudtraillogs
       GROUP BY STEP(cloudtraillogs.ROWTIME BY INTERVAL '10' SECOND), STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND);
CREATE OR REPLACE PUMP "PUMP_FOR_ANOMALY_CALL_COUNT" AS
 INSERT INTO "DESTINATION_ANOMALY_STREAM" 
 SELECT eventTimeStamp, 'AnomalyScore', CAST(callCount as VARCHAR(10)), 'None', 'Sum', ANOMALY_SCORE FROM 
 TABLE(RANDOM_CUT_FOREST(
              CURSOR(SELECT STREAM * FROM "TOTAL_CALL_COUNT_STREAM"), 100, 256, 100000, 20)); 
  
CREATE OR REPLACE PUMP "PUMP_FOR_CALLS_PER_IP" AS
  INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT eventTimeStamp, 'CallsPerUniqueIp', sip, 'None', 'Sum', callsPerIp FROM (
       SELECT STREAM STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '1' MINUTE) eventTimeStamp, COUNT(*) callsPerIp, "sourceIPAddress" sip
       FROM "SOURCE_SQL_STREAM_001" cloudtraillogs
       GROUP BY "sourceIPAddress", STEP(cloudtraillogs.ROWTIME BY INTERVAL '1' MINUTE), STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '1' MINUTE));
       
       
CREATE OR REPLACE PUMP "PUMP_FOR_CALLS_PER_API" AS
  INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT eventTimeStamp, 'CallsPerAPI', "eventSource", "eventName" , 'Sum', callsPerAPI FROM (
       SELECT STREAM STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND) as eventTimeStamp, COUNT(*) callsPerAPI, "eventSource", "eventName"
       FROM "SOURCE_SQL_STREAM_001" cloudtraillogs
       GROUP BY "eventSource", "eventName", STEP(cloudtraillogs.ROWTIME BY INTERVAL '10' SECOND), STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND));

CREATE OR REPLACE PUMP "PUMP_FOR_CALLS_PER_SOURCE" AS
  INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT eventTimeStamp, 'CallsPerServiceType', "eventSource", 'None', 'Sum', callsPerSource FROM (
       SELECT STREAM STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND) eventTimeStamp, COUNT(*) callsPerSource, "eventSource"
       FROM "SOURCE_SQL_STREAM_001" cloudtraillogs
       GROUP BY "eventSource", STEP(cloudtraillogs.ROWTIME BY INTERVAL '10' SECOND), STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND)
       HAVING "eventSource" <> 'ec2.amazonaws.com');

CREATE OR REPLACE PUMP "PUMP_FOR_EC2_CALLS" AS
  INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT eventTimeStamp, 'EC2Calls', "eventSource", "errorCode", 'Sum', callsPerSource FROM (
       SELECT STREAM STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND) eventTimeStamp, COUNT(*) callsPerSource, "errorCode", "eventSource"
       FROM "SOURCE_SQL_STREAM_001" cloudtraillogs
       GROUP BY "eventSource", "errorCode", STEP(cloudtraillogs.ROWTIME BY INTERVAL '10' SECOND), STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND)
       HAVING "eventSource" = 'ec2.amazonaws.com');
       
CREATE OR REPLACE PUMP "PUMP_FOR_CALLS_PER_USER" AS
  INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT eventTimeStamp, 'CallsPerUser', "userName" , 'None', 'Sum', callsPerUser FROM (
       SELECT STREAM STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND) as eventTimeStamp, COUNT(*) callsPerUser, "userName"
       FROM "SOURCE_SQL_STREAM_001" cloudtraillogs
       GROUP BY "userName", STEP(cloudtraillogs.ROWTIME BY INTERVAL '10' SECOND), STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND));
       
CREATE OR REPLACE PUMP  "PUMP_FOR_SUCCESSFUL_CALLS"  AS
 INSERT INTO "DESTINATION_SQL_STREAM"
   SELECT eventTimeStamp, 'NumberOfSuccessfulCalls', 'All' , 'None', 'Sum', numberOfSuccessfulCalls FROM (
       SELECT STREAM STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND) AS eventTimeStamp, COUNT(*) numberOfSuccessfulCalls
       FROM "SOURCE_SQL_STREAM_001" cloudtraillogs
       GROUP BY STEP(cloudtraillogs.ROWTIME BY INTERVAL '10' SECOND), STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND));
