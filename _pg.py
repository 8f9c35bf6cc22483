import secrets, time, cProfile, pstats
from sqlalchemy import create_engine, text
from eth_account import Account
from registry.creator import CreatorKeys, prepare_code_batch, sign_batch_registration
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.migrate import upgrade
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
base="postgresql+psycopg://postgres@127.0.0.1:5432/test"
admin=create_engine(base)
with admin.begin() as c: c.execute(text("DROP SCHEMA IF EXISTS benchpg CASCADE")); c.execute(text("CREATE SCHEMA benchpg"))
engine=create_db_engine(base+"?options=-csearch_path%3Dbenchpg"); upgrade(engine)
reg=Registry(engine, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32))
cr=CreatorKeys(Account.create(), secrets.token_bytes(32))
with open('/tmp/codes1m.csv') as f: batch=prepare_code_batch(f, cr.code_key)
req=sign_batch_registration(cr, DEV_DOMAIN, batch, good_type=GoodType.CODE, product="p", use=Use.SINGLE, royalty_policy=RoyaltyPolicy.parse({"recipients":[]}), metadata={}, now=reg.clock(), new_product=True)
pr=cProfile.Profile(); pr.enable()
t=time.perf_counter(); r=reg.register_batch(req, batch.fingerprints()); print("pg 20k ingest", time.perf_counter()-t, r.registered)
pr.disable()
with admin.begin() as c: c.execute(text("DROP SCHEMA benchpg CASCADE"))
